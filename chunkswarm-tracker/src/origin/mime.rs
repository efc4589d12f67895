//! Content types by file extension.
//!
//! Only passive types are named; anything else (HTML, SVG, scripts) is sent
//! as `application/octet-stream` with `nosniff`, so a file in the library can
//! never run script on the tracker's origin.

use std::path::Path;

/// The content type for a file name.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "webm" => "video/webm",
        "mp4" | "m4v" => "video/mp4",
        "mkv" => "video/x-matroska",
        "mov" => "video/quicktime",
        "ogv" => "video/ogg",
        "ts" => "video/mp2t",
        "avi" => "video/x-msvideo",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "weba" => "audio/webm",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "vtt" => "text/vtt; charset=utf-8",
        "srt" => "application/x-subrip",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "torrent" => "application/x-bittorrent",
        _ => "application/octet-stream",
    }
}

/// Whether the catalog lists a file: audio or video.
pub(crate) fn is_media(path: &Path) -> bool {
    let kind = content_type(path);
    kind.starts_with("video/") || kind.starts_with("audio/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type(Path::new("a/Film.WEBM")), "video/webm");
        assert_eq!(
            content_type(Path::new("x.html")),
            "application/octet-stream"
        );
        assert_eq!(content_type(Path::new("x.svg")), "application/octet-stream");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
        assert!(is_media(Path::new("song.flac")));
        assert!(!is_media(Path::new("poster.jpg")));
    }
}
