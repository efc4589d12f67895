//! The media library: the files below the media directory, with their
//! optional sidecar metadata and their torrents.
//!
//! A media file is a visible regular file with an audio or video extension.
//! Its sidecar is `<file name>.json` beside it (e.g. `film.webm.json`):
//! `{"title": .., "year": .., "description": .., "poster": .., "duration": ..}`,
//! every field optional; `duration` is in seconds, `poster` a URL or a path
//! relative to the library.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::origin::mime::is_media;
use crate::origin::path::{PathError, is_plain_name, locate};
use crate::torrents::TorrentCache;

/// How deep the scan goes below the root.
const MAX_DEPTH: usize = 8;
/// The most files listed.
const MAX_FILES: usize = 10_000;
/// The largest sidecar read.
const MAX_SIDECAR_BYTES: u64 = 64 << 10;
/// A listing is reused for this long before the directory is read again.
const LISTING_TTL: Duration = Duration::from_secs(10);

/// Metadata from a sidecar JSON file.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Sidecar {
    pub(crate) title: Option<String>,
    pub(crate) year: Option<i32>,
    pub(crate) description: Option<String>,
    pub(crate) poster: Option<String>,
    pub(crate) duration: Option<f64>,
}

/// One media file of the library.
#[derive(Debug, Clone)]
pub(crate) struct MediaFile {
    /// Path relative to the root, `/`-separated.
    pub(crate) rel: String,
    /// Canonical absolute path.
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    pub(crate) modified: SystemTime,
    pub(crate) sidecar: Sidecar,
}

/// The library: its root, a cached listing and the torrent cache.
#[derive(Debug)]
pub(crate) struct Library {
    root: PathBuf,
    listing: Mutex<Option<(Instant, Arc<Vec<MediaFile>>)>>,
    pub(crate) torrents: TorrentCache,
}

impl Library {
    /// A library at `dir`, which must be a directory, whose torrents have
    /// pieces of `piece_length` bytes.
    pub(crate) fn open(dir: &Path, piece_length: u32) -> std::io::Result<Self> {
        let root = std::fs::canonicalize(dir)?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory",
            ));
        }
        Ok(Self {
            root,
            listing: Mutex::new(None),
            torrents: TorrentCache::new(piece_length),
        })
    }

    /// The canonical root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The media files, read again if the listing is older than a few seconds.
    pub(crate) async fn files(&self) -> Arc<Vec<MediaFile>> {
        let mut listing = self.listing.lock().await;
        if let Some((at, files)) = listing.as_ref() {
            if at.elapsed() < LISTING_TTL {
                return Arc::clone(files);
            }
        }
        let root = self.root.clone();
        let files = tokio::task::spawn_blocking(move || scan(&root))
            .await
            .unwrap_or_default();
        let files = Arc::new(files);
        *listing = Some((Instant::now(), Arc::clone(&files)));
        files
    }

    /// The media file the path segments name, as it is on disk now.
    pub(crate) async fn media_file(&self, segments: Vec<String>) -> Result<MediaFile, PathError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let (path, meta) = locate(&root, &segments)?;
            if !is_media(&path) || meta.len() == 0 {
                return Err(PathError::NotFound);
            }
            Ok(MediaFile {
                rel: segments.join("/"),
                sidecar: Sidecar::default(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                path,
            })
        })
        .await
        .unwrap_or(Err(PathError::NotFound))
    }
}

/// Lists the media files below `root`, sorted by path. Blocking.
fn scan(root: &Path) -> Vec<MediaFile> {
    let mut files = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if files.len() >= MAX_FILES {
                break;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !is_plain_name(&name) {
                continue;
            }
            let path = entry.path();
            // Follows links, but only to places inside the library.
            let Ok(canonical) = std::fs::canonicalize(&path) else {
                continue;
            };
            if !canonical.starts_with(root) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&canonical) else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((canonical, rel, depth + 1));
                }
            } else if meta.is_file() && is_media(&canonical) && meta.len() > 0 {
                files.push(MediaFile {
                    sidecar: read_sidecar(&path),
                    rel,
                    path: canonical,
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    files
}

fn read_sidecar(media: &Path) -> Sidecar {
    let mut name = media.as_os_str().to_owned();
    name.push(".json");
    let path = PathBuf::from(name);
    let small = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= MAX_SIDECAR_BYTES);
    if !small {
        return Sidecar::default();
    }
    std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chunkswarm_core::layout::DEFAULT_PIECE_LENGTH;

    use super::*;

    #[tokio::test]
    async fn lists_media_with_sidecars_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("b.webm"), b"video").unwrap();
        std::fs::write(
            root.join("b.webm.json"),
            br#"{"title":"Bee","year":2001,"extra":1}"#,
        )
        .unwrap();
        std::fs::write(root.join("notes.txt"), b"text").unwrap();
        std::fs::write(root.join(".hidden.mp4"), b"x").unwrap();
        std::fs::write(root.join("empty.mp4"), b"").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.mp3"), b"audio").unwrap();
        std::fs::write(root.join("sub/bad.mp3.json"), b"{not json").unwrap();
        std::fs::write(root.join("sub/bad.mp3"), b"x").unwrap();

        let library = Library::open(root, DEFAULT_PIECE_LENGTH).unwrap();
        let files = library.files().await;
        let names: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["b.webm", "sub/a.mp3", "sub/bad.mp3"]);
        assert_eq!(files[0].sidecar.title.as_deref(), Some("Bee"));
        assert_eq!(files[0].sidecar.year, Some(2001));
        assert!(files[2].sidecar.title.is_none());
        assert_eq!(
            library
                .media_file(vec!["sub".into(), "a.mp3".into()])
                .await
                .unwrap()
                .size,
            5
        );
        assert!(library.media_file(vec!["notes.txt".into()]).await.is_err());
    }
}
