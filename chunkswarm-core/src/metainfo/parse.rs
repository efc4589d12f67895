//! Reading a `.torrent` file.

use bt_bencode::{ByteString, Value};
use serde::Deserialize;

use super::bencode_check::{self, BencodeError};
use super::{Info, InfoError, MAX_METAINFO_LEN, Metainfo};

/// Why a `.torrent` file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    /// Larger than [`MAX_METAINFO_LEN`].
    #[error("metainfo of {0} bytes is larger than the {MAX_METAINFO_LEN}-byte limit")]
    TooLarge(usize),
    /// Not well-formed bencode.
    #[error(transparent)]
    Bencode(#[from] BencodeError),
    /// Not a dictionary with an `info` dictionary in it.
    #[error("not a torrent: {0}")]
    NotATorrent(String),
    /// The info dictionary is unusable.
    #[error("bad info dictionary: {0}")]
    Info(#[from] InfoError),
}

/// The top level with only `info` decoded, captured as its raw bytes for the
/// infohash.
#[derive(Deserialize)]
struct RawInfo {
    info: ByteString,
}

impl Metainfo {
    /// Parses a `.torrent` file.
    ///
    /// The info dictionary must be complete and consistent (see [`InfoError`]).
    /// Trackers, web seeds and descriptive fields are read leniently: entries
    /// that are not UTF-8 strings are skipped.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        if bytes.len() > MAX_METAINFO_LEN {
            return Err(MetainfoError::TooLarge(bytes.len()));
        }
        bencode_check::check(bytes)?;
        let not_a_torrent = |why: String| MetainfoError::NotATorrent(why);
        let top: Value = bt_bencode::from_slice(bytes).map_err(|e| not_a_torrent(e.to_string()))?;
        let dict = top
            .as_dict()
            .ok_or_else(|| not_a_torrent("not a dictionary".into()))?;
        if !dict.get(b"info".as_slice()).is_some_and(Value::is_dict) {
            return Err(not_a_torrent("no info dictionary".into()));
        }
        let raw: RawInfo =
            bt_bencode::from_slice(bytes).map_err(|e| not_a_torrent(e.to_string()))?;
        let info = Info::from_bytes(raw.info.as_slice())?;
        let field = |key: &str| dict.get(key.as_bytes());

        let announce_list = field("announce-list")
            .and_then(Value::as_list)
            .map(|tiers| {
                tiers
                    .iter()
                    .map(strings)
                    .filter(|tier| !tier.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            info,
            announce: field("announce").and_then(string),
            announce_list,
            web_seeds: field("url-list").map(strings).unwrap_or_default(),
            comment: field("comment").and_then(string),
            created_by: field("created by").and_then(string),
            creation_date: field("creation date").and_then(integer),
        })
    }
}

fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// A string or a list of strings (BEP 19 allows both for `url-list`), with
/// empty and non-UTF-8 entries dropped.
fn strings(value: &Value) -> Vec<String> {
    let items: Vec<&Value> = match value {
        Value::List(items) => items.iter().collect(),
        single => vec![single],
    };
    items
        .into_iter()
        .filter_map(string)
        .filter(|s| !s.is_empty())
        .collect()
}

/// An integer the decoder may have stored as signed or unsigned.
fn integer(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_u64().and_then(|n| i64::try_from(n).ok()))
}
