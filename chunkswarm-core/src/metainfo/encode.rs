//! Writing metainfo as canonical bencode (keys sorted by their raw bytes).

use std::collections::BTreeMap;

use bt_bencode::{ByteString, Value};

use super::{Metainfo, PieceHash};

fn string(s: &str) -> Value {
    Value::ByteStr(ByteString::from(s.as_bytes().to_vec()))
}

fn dict(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let map: BTreeMap<ByteString, Value> = entries
        .into_iter()
        .map(|(key, value)| (ByteString::from(key.as_bytes().to_vec()), value))
        .collect();
    Value::Dict(map)
}

fn to_vec(value: &Value) -> Vec<u8> {
    // Encoding a `Value` into a `Vec` has no failure path: every variant is
    // representable and writing to memory cannot fail.
    bt_bencode::to_vec(value).unwrap_or_default()
}

/// The canonical encoding of an info dictionary.
pub(super) fn info_dict(
    name: &str,
    piece_length: u32,
    piece_hashes: &[PieceHash],
    files: &[(Vec<String>, u64)],
    multi_file: bool,
    private: bool,
) -> Vec<u8> {
    let pieces: Vec<u8> = piece_hashes.iter().flat_map(|hash| hash.0).collect();
    let mut entries = vec![
        ("name", string(name)),
        ("piece length", Value::from(piece_length)),
        ("pieces", Value::ByteStr(ByteString::from(pieces))),
    ];
    if multi_file {
        let list = files
            .iter()
            .map(|(path, length)| {
                dict([
                    ("length", Value::from(*length)),
                    (
                        "path",
                        Value::List(path.iter().map(|c| string(c)).collect()),
                    ),
                ])
            })
            .collect();
        entries.push(("files", Value::List(list)));
    } else {
        let length = files.first().map_or(0, |(_, length)| *length);
        entries.push(("length", Value::from(length)));
    }
    if private {
        entries.push(("private", Value::from(1u8)));
    }
    to_vec(&dict(entries))
}

impl Metainfo {
    /// The `.torrent` file's bytes. The info dictionary is written exactly as
    /// it was received, so the infohash is preserved even for torrents whose
    /// encoding was not canonical.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut outer: Vec<(&'static str, Value)> = Vec::new();
        if let Some(announce) = &self.announce {
            outer.push(("announce", string(announce)));
        }
        if !self.announce_list.is_empty() {
            let tiers = self
                .announce_list
                .iter()
                .map(|tier| Value::List(tier.iter().map(|url| string(url)).collect()))
                .collect();
            outer.push(("announce-list", Value::List(tiers)));
        }
        if let Some(comment) = &self.comment {
            outer.push(("comment", string(comment)));
        }
        if let Some(created_by) = &self.created_by {
            outer.push(("created by", string(created_by)));
        }
        if let Some(date) = self.creation_date {
            outer.push(("creation date", Value::from(date)));
        }
        if !self.web_seeds.is_empty() {
            let seeds = self.web_seeds.iter().map(|url| string(url)).collect();
            outer.push(("url-list", Value::List(seeds)));
        }
        // "info" sorts between "creation date" and "url-list"; splice its raw
        // bytes in by hand so they are never re-encoded.
        outer.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut out = Vec::with_capacity(self.info.encoded().len() + 512);
        out.push(b'd');
        let mut info_written = false;
        for (key, value) in &outer {
            if !info_written && key.as_bytes() > b"info".as_slice() {
                write_info(&mut out, self);
                info_written = true;
            }
            write_key(&mut out, key);
            out.extend_from_slice(&to_vec(value));
        }
        if !info_written {
            write_info(&mut out, self);
        }
        out.push(b'e');
        out
    }
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(key.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(key.as_bytes());
}

fn write_info(out: &mut Vec<u8>, metainfo: &Metainfo) {
    write_key(out, "info");
    out.extend_from_slice(metainfo.info.encoded());
}
