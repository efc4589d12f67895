//! BEP 19 web seeds as URLs and byte ranges, for every adapter: where each
//! file of a torrent lives under a `url-list` entry, and which requests a
//! range of the content becomes. No I/O; the native adapter (hyper) and the
//! browser (`fetch`) both send what [`WebSeedFiles::requests`] plans.
//!
//! ```
//! # use chunkswarm_core::web_seed::WebSeedFiles;
//! let files = WebSeedFiles::whole("http://127.0.0.1/film.mp4");
//! let plan = files.requests(0..100);
//! assert_eq!(plan, vec![("http://127.0.0.1/film.mp4", 0..100)]);
//! ```

use std::ops::Range;

use crate::metainfo::Info;

/// Where each file of a torrent's content is served: its byte range in the
/// content and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSeedFiles {
    files: Vec<(Range<u64>, String)>,
}

impl WebSeedFiles {
    /// The whole content at one URL.
    pub fn whole(url: &str) -> Self {
        Self {
            files: vec![(0..u64::MAX, url.to_owned())],
        }
    }

    /// A torrent's `url-list` entry as BEP 19 reads it: a single-file
    /// torrent is at `url` (or `url` + its name when `url` ends in `/`); a
    /// multi-file torrent's files are at `url/name/path/of/file`, each path
    /// segment percent-encoded. Empty files need no request and are left out.
    pub fn for_torrent(url: &str, info: &Info) -> Self {
        let base = url.trim_end_matches('/');
        if !info.is_multi_file() {
            return if url.ends_with('/') {
                Self::whole(&format!("{base}/{}", encode(info.name())))
            } else {
                Self::whole(url)
            };
        }
        let files = info
            .files()
            .iter()
            .filter(|f| f.length() > 0)
            .map(|f| {
                let path: Vec<String> = f.path().iter().map(|c| encode(c)).collect();
                let url = format!("{base}/{}/{}", encode(info.name()), path.join("/"));
                (f.byte_range(), url)
            })
            .collect();
        Self { files }
    }

    /// Each file's range in the content and its URL.
    pub fn files(&self) -> &[(Range<u64>, String)] {
        &self.files
    }

    /// The requests that fetch `range` of the content, in order: each
    /// file's URL with the range within that file. Empty if no file holds
    /// any of it.
    pub fn requests(&self, range: Range<u64>) -> Vec<(&str, Range<u64>)> {
        self.files
            .iter()
            .filter_map(|(content, url)| {
                let start = range.start.max(content.start);
                let end = range.end.min(content.end);
                (start < end).then(|| (url.as_str(), start - content.start..end - content.start))
            })
            .collect()
    }
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::TorrentBuilder;

    fn folder() -> Info {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("My Show");
        std::fs::create_dir_all(root.join("season 1")).unwrap();
        std::fs::write(root.join("a.txt"), vec![1u8; 100]).unwrap();
        std::fs::write(root.join("empty"), b"").unwrap();
        std::fs::write(root.join("season 1").join("ep#1.mp4"), vec![2u8; 300]).unwrap();
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .build_from_path(&root)
            .unwrap();
        meta.info().clone()
    }

    #[test]
    fn a_multi_file_torrent_maps_each_file_under_the_name() {
        let info = folder();
        let seed = WebSeedFiles::for_torrent("https://cdn.test/media/", &info);
        let urls: Vec<(Range<u64>, &str)> = seed
            .files()
            .iter()
            .map(|(r, u)| (r.clone(), u.as_str()))
            .collect();
        assert_eq!(
            urls,
            vec![
                (0..100, "https://cdn.test/media/My%20Show/a.txt"),
                (
                    100..400,
                    "https://cdn.test/media/My%20Show/season%201/ep%231.mp4"
                ),
            ]
        );
    }

    #[test]
    fn a_range_across_files_becomes_one_request_per_file() {
        let seed = WebSeedFiles::for_torrent("https://cdn.test/media", &folder());
        let plan = seed.requests(90..150);
        assert_eq!(
            plan,
            vec![
                ("https://cdn.test/media/My%20Show/a.txt", 90..100),
                (
                    "https://cdn.test/media/My%20Show/season%201/ep%231.mp4",
                    0..50
                ),
            ]
        );
        assert!(seed.requests(400..500).is_empty());
    }

    #[test]
    fn a_single_file_is_at_the_url_or_under_it() {
        let content = vec![7u8; 1000];
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .build_from_reader("film one.mp4", content.as_slice())
            .unwrap();
        let at = WebSeedFiles::for_torrent("http://127.0.0.1:8080/f.mp4", meta.info());
        assert_eq!(
            at.requests(10..20),
            vec![("http://127.0.0.1:8080/f.mp4", 10..20)]
        );
        let under = WebSeedFiles::for_torrent("http://127.0.0.1:8080/", meta.info());
        assert_eq!(
            under.requests(0..1),
            vec![("http://127.0.0.1:8080/film%20one.mp4", 0..1)]
        );
    }
}
