//! From a request path to a file inside the media library, and nowhere else.
//!
//! The path is percent-decoded exactly once, then split on `/`. Every segment
//! must be a plain name: not empty, not `.` or `..`, not hidden (leading `.`),
//! and free of `\`, `:` and control characters (NUL included). The file found
//! is then canonicalized (resolving symbolic links) and must still lie below
//! the library's canonical root.

use std::io;
use std::path::{Path, PathBuf};

/// Why a request path names no file of the library.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    /// Malformed: bad percent-encoding, not UTF-8, or a forbidden segment.
    #[error("malformed path")]
    Malformed,
    /// No such file (or not a regular file) in the library.
    #[error("not found")]
    NotFound,
    /// The path resolves outside the library (through a symbolic link).
    #[error("path leaves the library")]
    Outside,
    /// Reading the file system failed.
    #[error("file system error: {0}")]
    Io(#[from] io::Error),
}

/// Decodes `%XX` escapes once; `None` for a bad escape or non-UTF-8 result.
pub(crate) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a library-relative path for a URL, keeping the `/`s.
pub(crate) fn percent_encode_path(rel: &str) -> String {
    let mut out = String::with_capacity(rel.len());
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a file name is a plain, visible name.
pub(crate) fn is_plain_name(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && !segment
            .chars()
            .any(|c| c == '\\' || c == ':' || c == '/' || c.is_control())
}

/// The library-relative segments of a raw (still encoded) request path.
pub(crate) fn segments(raw: &str) -> Result<Vec<String>, PathError> {
    let decoded = percent_decode(raw).ok_or(PathError::Malformed)?;
    let segments: Vec<String> = decoded.split('/').map(str::to_owned).collect();
    if segments.len() > 32 || !segments.iter().all(|s| is_plain_name(s)) {
        return Err(PathError::Malformed);
    }
    Ok(segments)
}

/// The canonical path of the regular file the segments name below `root`
/// (itself canonical). Blocking: call it from a blocking task.
pub(crate) fn locate(
    root: &Path,
    segments: &[String],
) -> Result<(PathBuf, std::fs::Metadata), PathError> {
    let joined = segments
        .iter()
        .fold(root.to_path_buf(), |path, s| path.join(s));
    let canonical = match std::fs::canonicalize(&joined) {
        Ok(path) => path,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(PathError::NotFound);
        }
        Err(e) => return Err(PathError::Io(e)),
    };
    if !canonical.starts_with(root) {
        return Err(PathError::Outside);
    }
    let metadata = std::fs::metadata(&canonical)?;
    if !metadata.is_file() {
        return Err(PathError::NotFound);
    }
    Ok((canonical, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%252e").as_deref(), Some("%2e"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn refuses_every_escape_route() {
        for raw in [
            "../x",
            "a/../../x",
            "%2e%2e/x",
            "%2E%2E%2Fx",
            "..%2fx",
            "..%5cx",
            "..\\x",
            "/etc/passwd",
            "%2fetc%2fpasswd",
            "a//b",
            "a/./b",
            ".hidden",
            "a%00b",
            "C:%5cwindows",
            "a/",
            "",
            "%c0%ae%c0%ae/x",
        ] {
            assert!(
                matches!(segments(raw), Err(PathError::Malformed)),
                "{raw} accepted"
            );
        }
        assert_eq!(
            segments("dir/film%20one.webm").unwrap(),
            ["dir", "film one.webm"]
        );
        // Double encoding decodes once, to a literal (and absent) name.
        assert_eq!(segments("%252e%252e%252fx").unwrap(), ["%2e%2e%2fx"]);
    }

    #[test]
    fn encodes_for_urls() {
        assert_eq!(
            percent_encode_path("dir/a b#?.webm"),
            "dir/a%20b%23%3F.webm"
        );
        assert_eq!(
            percent_decode(&percent_encode_path("é/ü")).as_deref(),
            Some("é/ü")
        );
    }
}
