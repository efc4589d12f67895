//! BitTorrent v1 metainfo: the `.torrent` file that names the content, cuts it
//! into pieces, and lists each piece's SHA-1.
//!
//! [`Metainfo::from_bytes`] reads any v1 torrent, single- or multi-file, as
//! made by ordinary tools (mktorrent, transmission-create, libtorrent, ...).
//! The [`InfoHash`] is the SHA-1 of the `info` dictionary's bytes exactly as
//! received, so a torrent whose encoding is not canonical still joins the right
//! swarm. [`TorrentBuilder`] creates torrents, streaming the content through
//! the hasher in constant memory.
//!
//! ```
//! use chunkswarm_core::metainfo::{Metainfo, TorrentBuilder};
//!
//! let content = vec![7u8; 3 << 20];
//! let torrent = TorrentBuilder::new()
//!     .announce("wss://tracker.example/announce")
//!     .web_seed("https://media.example/film.webm")
//!     .build_from_reader("film.webm", content.as_slice())?;
//! assert_eq!(torrent.info().layout().piece_count(), 3);
//!
//! let again = Metainfo::from_bytes(&torrent.to_bytes())?;
//! assert_eq!(again.info_hash(), torrent.info_hash());
//! assert_eq!(again.web_seeds(), ["https://media.example/film.webm"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bencode_check;
mod create;
mod encode;
mod info;
mod parse;

pub use bencode_check::{BencodeError, BencodeProblem};
pub(crate) use bencode_check::{check as check_bencode, value_len as bencode_value_len};
pub use create::{CreateError, MAX_DIR_DEPTH, PieceHasher, TorrentBuilder};
pub use info::{FileEntry, Info, InfoError, InfoHash, PieceHash};
pub use parse::MetainfoError;

/// The largest `.torrent` accepted: 32 MiB, enough for the piece hashes of
/// 1.6 TiB in 1 MiB pieces.
pub const MAX_METAINFO_LEN: usize = 32 << 20;

/// A parsed `.torrent`: the [`Info`] that identifies the content plus where to
/// find peers (trackers) and an HTTP origin (web seeds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    info: Info,
    announce: Option<String>,
    announce_list: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
}

impl Metainfo {
    /// The info dictionary: name, geometry, piece hashes, files.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The swarm's identity: SHA-1 of the info dictionary as encoded.
    pub fn info_hash(&self) -> InfoHash {
        self.info.info_hash()
    }

    /// The `announce` URL, if any.
    pub fn announce(&self) -> Option<&str> {
        self.announce.as_deref()
    }

    /// The BEP 12 `announce-list` tiers as given (empty if absent).
    pub fn announce_list(&self) -> &[Vec<String>] {
        &self.announce_list
    }

    /// Every tracker URL once, in BEP 12 order: the tiers of
    /// `announce-list` if present, else `announce`.
    pub fn trackers(&self) -> Vec<&str> {
        let mut urls: Vec<&str> = Vec::new();
        let listed = self.announce_list.iter().flatten().map(String::as_str);
        for url in listed.chain(self.announce.as_deref()) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }

    /// The BEP 19 `url-list` web seeds: HTTP origins serving the content.
    pub fn web_seeds(&self) -> &[String] {
        &self.web_seeds
    }

    /// The free-text `comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The `created by` program, if any.
    pub fn created_by(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    /// The `creation date` in seconds since the Unix epoch, if any.
    pub fn creation_date(&self) -> Option<i64> {
        self.creation_date
    }

    /// A torrent of this info dictionary with no tracker, web seed or
    /// comment: what a magnet link's metadata fetched from peers gives,
    /// before [`Magnet::resolve`](crate::magnet::Magnet::resolve) adds the
    /// link's trackers and web seeds.
    pub fn from_info(info: Info) -> Self {
        Self {
            info,
            announce: None,
            announce_list: Vec::new(),
            web_seeds: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
        }
    }

    /// Adds a tracker not listed yet, as a tier of its own after the others.
    pub(crate) fn add_tracker(&mut self, url: &str) {
        if self.trackers().contains(&url) {
            return;
        }
        if self.announce_list.is_empty() {
            self.announce_list
                .extend(self.announce.iter().map(|a| vec![a.clone()]));
        }
        self.announce_list.push(vec![url.to_owned()]);
        self.announce.get_or_insert_with(|| url.to_owned());
    }

    /// Adds a web seed not listed yet.
    pub(crate) fn add_web_seed(&mut self, url: &str) {
        if !self.web_seeds.iter().any(|u| u == url) {
            self.web_seeds.push(url.to_owned());
        }
    }
}

#[cfg(test)]
mod tests;
