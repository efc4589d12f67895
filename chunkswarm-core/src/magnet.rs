//! Magnet links (BEP 9): a swarm named by its infohash alone, with hints of
//! where to find peers, an origin and the metadata.
//!
//! ```
//! use chunkswarm_core::magnet::Magnet;
//!
//! let magnet: Magnet = "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056\
//!     &dn=Cosmos+Laundromat&tr=wss%3A%2F%2Ftracker.example%2Fannounce\
//!     &ws=https%3A%2F%2Fmedia.example%2Fcosmos.webm&xs=https%3A%2F%2Fmedia.example%2Fcosmos.torrent"
//!     .parse()?;
//! assert_eq!(magnet.name(), Some("Cosmos Laundromat"));
//! assert_eq!(magnet.trackers(), ["wss://tracker.example/announce"]);
//! assert_eq!(magnet.sources(), ["https://media.example/cosmos.torrent"]);
//! assert_eq!(magnet.to_string().parse::<Magnet>()?, magnet);
//! # Ok::<(), chunkswarm_core::magnet::MagnetError>(())
//! ```
//!
//! Read: `xt=urn:btih:` in hex (40 digits) or base32 (32 letters), `dn`
//! (name), `tr` (trackers), `ws` (web seeds, BEP 19), `xs` (exact sources:
//! URLs of the `.torrent`), `as` (acceptable sources), `xl` (length in
//! bytes). Keys may carry a `.N` suffix (`tr.1=`). Unknown keys are skipped,
//! as are `urn:btmh:` (v2) topics beside a v1 one; a link with only a v2
//! topic is refused, since swarms here are v1. A value repeated is kept
//! once. Written: [`Magnet::from_metainfo`] and [`Display`](std::fmt::Display),
//! every value percent-encoded.

use std::fmt;
use std::str::FromStr;

use crate::metainfo::{InfoHash, Metainfo};

/// The longest link accepted, in bytes.
pub const MAX_MAGNET_LEN: usize = 64 << 10;

/// Why a magnet link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    #[error("not a magnet link (it must start with `magnet:?`)")]
    NotMagnet,
    /// Longer than [`MAX_MAGNET_LEN`].
    #[error("the magnet link is {0} bytes long, more than the {MAX_MAGNET_LEN} accepted")]
    TooLong(usize),
    /// No `xt=urn:btih:` topic.
    #[error("the magnet link names no v1 infohash (`xt=urn:btih:…`)")]
    MissingInfoHash,
    /// Only a v2 (`urn:btmh:`) topic.
    #[error("the magnet link names only a v2 infohash (`urn:btmh:`); v1 (`urn:btih:`) is needed")]
    OnlyV2,
    /// Two different v1 infohashes.
    #[error("the magnet link names two different infohashes")]
    ConflictingInfoHashes,
    /// The infohash is neither 40 hex digits nor 32 base32 letters.
    #[error("bad infohash `{0}`: 40 hex digits or 32 base32 letters expected")]
    BadInfoHash(String),
    /// A `%` not followed by two hex digits, or a value that is not UTF-8.
    #[error("bad percent-encoding in `{key}`")]
    BadEncoding {
        /// The parameter's key.
        key: String,
    },
    /// `xl` is not a whole number of bytes.
    #[error("bad length `{0}` (`xl` is a whole number of bytes)")]
    BadLength(String),
    /// The torrent found for the link is another one.
    #[error("the torrent found has infohash {got}, not the link's {expected}")]
    WrongTorrent {
        /// The link's infohash.
        expected: InfoHash,
        /// The torrent's.
        got: InfoHash,
    },
}

/// A parsed magnet link. Lists keep the link's order, without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    info_hash: InfoHash,
    name: Option<String>,
    trackers: Vec<String>,
    web_seeds: Vec<String>,
    sources: Vec<String>,
    acceptable_sources: Vec<String>,
    length: Option<u64>,
}

impl Magnet {
    /// A link naming `info_hash` and nothing else.
    pub fn new(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            sources: Vec::new(),
            acceptable_sources: Vec::new(),
            length: None,
        }
    }

    /// The link of a torrent: its infohash, name, length, trackers and web
    /// seeds. Add where the `.torrent` is served with [`with_source`](Self::with_source).
    pub fn from_metainfo(metainfo: &Metainfo) -> Self {
        let mut magnet = Self::new(metainfo.info_hash());
        magnet.name = Some(metainfo.info().name().to_owned());
        magnet.length = Some(metainfo.info().total_length());
        for tracker in metainfo.trackers() {
            push_new(&mut magnet.trackers, tracker.to_owned());
        }
        for seed in metainfo.web_seeds() {
            push_new(&mut magnet.web_seeds, seed.clone());
        }
        magnet
    }

    /// Adds an exact source (`xs`): a URL of the `.torrent`.
    #[must_use]
    pub fn with_source(mut self, url: impl Into<String>) -> Self {
        push_new(&mut self.sources, url.into());
        self
    }

    /// Parses a link; see the [module docs](self) for what is read.
    pub fn parse(uri: &str) -> Result<Self, MagnetError> {
        if uri.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong(uri.len()));
        }
        let query =
            strip_prefix_ignore_case(uri.trim(), "magnet:?").ok_or(MagnetError::NotMagnet)?;
        let mut info_hash: Option<InfoHash> = None;
        let mut only_v2 = false;
        let mut magnet = Self::new(InfoHash::new([0; 20]));
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            // `tr.1=…`: the suffix only numbers repeats.
            let key = raw_key.split('.').next().unwrap_or(raw_key);
            let value = || {
                percent_decode(raw_value, key == "dn").ok_or_else(|| MagnetError::BadEncoding {
                    key: raw_key.chars().take(32).collect(),
                })
            };
            match key {
                "xt" => {
                    let topic = value()?;
                    if let Some(hash) = strip_prefix_ignore_case(&topic, "urn:btih:") {
                        let hash = parse_info_hash(hash)?;
                        if info_hash.is_some_and(|known| known != hash) {
                            return Err(MagnetError::ConflictingInfoHashes);
                        }
                        info_hash = Some(hash);
                    } else if strip_prefix_ignore_case(&topic, "urn:btmh:").is_some() {
                        only_v2 = true;
                    }
                }
                "dn" => magnet.name = Some(value()?),
                "tr" => push_new(&mut magnet.trackers, value()?),
                "ws" => push_new(&mut magnet.web_seeds, value()?),
                "xs" => push_new(&mut magnet.sources, value()?),
                "as" => push_new(&mut magnet.acceptable_sources, value()?),
                "xl" => {
                    let text = value()?;
                    let length = text
                        .parse()
                        .map_err(|_| MagnetError::BadLength(text.chars().take(32).collect()))?;
                    magnet.length = Some(length);
                }
                _ => {}
            }
        }
        magnet.info_hash = match (info_hash, only_v2) {
            (Some(hash), _) => hash,
            (None, true) => return Err(MagnetError::OnlyV2),
            (None, false) => return Err(MagnetError::MissingInfoHash),
        };
        Ok(magnet)
    }

    /// The torrent the link names, from its metainfo found anywhere (an `xs`
    /// URL, a peer): refused unless its infohash is the link's, and given
    /// the link's trackers and web seeds besides its own.
    pub fn resolve(&self, mut metainfo: Metainfo) -> Result<Metainfo, MagnetError> {
        if metainfo.info_hash() != self.info_hash {
            return Err(MagnetError::WrongTorrent {
                expected: self.info_hash,
                got: metainfo.info_hash(),
            });
        }
        for tracker in &self.trackers {
            metainfo.add_tracker(tracker);
        }
        for seed in &self.web_seeds {
            metainfo.add_web_seed(seed);
        }
        Ok(metainfo)
    }

    /// The swarm's identity.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The display name (`dn`), if given.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Tracker URLs (`tr`).
    pub fn trackers(&self) -> &[String] {
        &self.trackers
    }

    /// Web seed URLs (`ws`, BEP 19).
    pub fn web_seeds(&self) -> &[String] {
        &self.web_seeds
    }

    /// URLs of the `.torrent` itself (`xs`).
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Other URLs the content may be found at (`as`).
    pub fn acceptable_sources(&self) -> &[String] {
        &self.acceptable_sources
    }

    /// The content's length in bytes (`xl`), if given.
    pub fn length(&self) -> Option<u64> {
        self.length
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(uri: &str) -> Result<Self, MagnetError> {
        Self::parse(uri)
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(name) = &self.name {
            write!(f, "&dn={}", percent_encode(name))?;
        }
        if let Some(length) = self.length {
            write!(f, "&xl={length}")?;
        }
        let lists = [
            ("tr", &self.trackers),
            ("ws", &self.web_seeds),
            ("xs", &self.sources),
            ("as", &self.acceptable_sources),
        ];
        for (key, values) in lists {
            for value in values {
                write!(f, "&{key}={}", percent_encode(value))?;
            }
        }
        Ok(())
    }
}

fn push_new(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn parse_info_hash(text: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfoHash(text.chars().take(64).collect());
    match text.len() {
        40 => InfoHash::from_hex(text).ok_or_else(bad),
        32 => base32_decode(text).map(InfoHash::new).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// RFC 4648 base32 (A–Z, 2–7, either case, no padding) of exactly 20 bytes.
fn base32_decode(text: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut bits: u64 = 0;
    let mut count = 0u32;
    let mut at = 0;
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        bits = (bits << 5) | u64::from(value);
        count += 5;
        if count >= 8 {
            count -= 8;
            *out.get_mut(at)? = (bits >> count) as u8;
            at += 1;
        }
    }
    (at == 20).then_some(out)
}

/// Decodes `%XX` escapes (and `+` as a space where `plus_is_space`);
/// `None` on a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
