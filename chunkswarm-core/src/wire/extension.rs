//! BEP 10 extension payloads: the extension handshake and chunkswarm's
//! `cs_origin` and `cs_playhead` messages.
//!
//! A peer that sets the extension bit in its handshake may send `extended`
//! messages. Extended id 0 is the [`ExtensionHandshake`]: a bencoded
//! dictionary whose `m` maps each extension the sender speaks to the id it
//! wants that extension's messages sent with. A client ignores the names it
//! does not know, so WebTorrent peers and chunkswarm peers share a swarm.
//!
//! `cs_origin` ([`OriginClaim`], [`ORIGIN_CLAIM`]) tells neighbours that a
//! piece no peer held is on its way from the HTTP origin, so that peers
//! elsewhere in the swarm do not pay the origin for the same piece. Its
//! payload is the bencoded dictionary `{"hops": n, "piece": i}`: a claim
//! with `hops` above zero is passed on once more, with one hop fewer, so it
//! reaches the neighbours of the sender's neighbours.
//!
//! `cs_playhead` ([`Playhead`], [`PLAYHEAD`]) tells neighbours where the
//! sender's playback is, `{"pos": byte offset, "rate": bytes per second}`
//! (rate 0 when it does not play), so that a peer serving several
//! neighbours sends first the blocks whose playback deadline is nearest.
//!
//! Payloads are structure-checked before decoding (bounded nesting, well
//! formed lengths), so hostile bytes give an [`ExtensionError`], never a
//! panic or a deep recursion.

use std::collections::BTreeMap;

use bt_bencode::{ByteString, Value};
use bytes::Bytes;

use crate::metainfo::check_bencode;

/// Extended message id of the extension handshake.
pub const EXTENSION_HANDSHAKE_ID: u8 = 0;

/// The name of chunkswarm's origin-claim extension in the handshake's `m`.
pub const ORIGIN_CLAIM: &str = "cs_origin";

/// The name of chunkswarm's playhead extension in the handshake's `m`.
pub const PLAYHEAD: &str = "cs_playhead";

/// The most hops a claim travels past its sender; larger values are capped.
pub const MAX_CLAIM_HOPS: u8 = 1;

/// Longest extension handshake accepted: real ones are a few hundred bytes.
const MAX_HANDSHAKE_LEN: usize = 64 * 1024;

/// Most extensions read from one handshake's `m`.
const MAX_EXTENSIONS: usize = 64;

/// Why an extension payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// Not one well-formed bencode value.
    #[error("malformed bencode in an extension message: {0}")]
    Bencode(String),
    /// Well-formed, but not the dictionary the message needs.
    #[error("bad extension message: {0}")]
    Shape(&'static str),
    /// Longer than any real message of its kind.
    #[error("extension handshake of {0} bytes is too long")]
    TooLong(usize),
}

/// The BEP 10 extension handshake (extended id 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionHandshake {
    /// Extension names the sender speaks, with the extended id to send their
    /// messages with. Id 0 means the sender turned the extension off.
    pub extensions: BTreeMap<String, u8>,
    /// The sender's client name and version (`v`).
    pub client: Option<String>,
    /// How many requests the sender queues before dropping more (`reqq`).
    pub request_queue: Option<u32>,
    /// Bytes in the torrent's info dictionary, offered over `ut_metadata`
    /// (BEP 9 `metadata_size`).
    pub metadata_size: Option<u64>,
}

impl ExtensionHandshake {
    /// The extended id the sender wants messages of `name` sent with, if it
    /// speaks that extension.
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.extensions.get(name).copied().filter(|id| *id != 0)
    }

    /// The bencoded payload.
    pub fn encode(&self) -> Bytes {
        let m: BTreeMap<ByteString, Value> = self
            .extensions
            .iter()
            .map(|(name, id)| (key(name), Value::from(*id)))
            .collect();
        let mut entries = vec![("m", Value::Dict(m))];
        if let Some(size) = self.metadata_size {
            entries.push(("metadata_size", Value::from(size)));
        }
        if let Some(queue) = self.request_queue {
            entries.push(("reqq", Value::from(queue)));
        }
        if let Some(client) = &self.client {
            entries.push(("v", Value::ByteStr(key(client))));
        }
        encode_dict(entries)
    }

    /// Reads a payload. Unknown keys are ignored, as BEP 10 asks; so are
    /// `m` entries whose id is not a byte-sized integer.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        if payload.len() > MAX_HANDSHAKE_LEN {
            return Err(ExtensionError::TooLong(payload.len()));
        }
        let dict = decode_dict(payload)?;
        let m = dict
            .get(b"m".as_slice())
            .and_then(Value::as_dict)
            .ok_or(ExtensionError::Shape("the handshake has no `m` dictionary"))?;
        let extensions = m
            .iter()
            .filter_map(|(name, id)| {
                let name = std::str::from_utf8(name.as_slice()).ok()?;
                let id = u8::try_from(id.as_u64()?).ok()?;
                Some((name.to_owned(), id))
            })
            .take(MAX_EXTENSIONS)
            .collect();
        let client = dict
            .get(b"v".as_slice())
            .and_then(Value::as_byte_str)
            .map(|v| String::from_utf8_lossy(v.as_slice()).into_owned());
        let request_queue = dict
            .get(b"reqq".as_slice())
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        let metadata_size = dict
            .get(b"metadata_size".as_slice())
            .and_then(Value::as_u64);
        Ok(Self {
            extensions,
            client,
            request_queue,
            metadata_size,
        })
    }
}

/// A `cs_origin` message: `piece`, which no peer held, is being fetched from
/// the HTTP origin by the sender or by a peer `MAX_CLAIM_HOPS - hops + 1`
/// connections away from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginClaim {
    /// The piece index.
    pub piece: u32,
    /// How many more times the claim is passed on.
    pub hops: u8,
}

impl OriginClaim {
    /// The bencoded payload.
    pub fn encode(&self) -> Bytes {
        encode_dict([
            ("hops", Value::from(self.hops)),
            ("piece", Value::from(self.piece)),
        ])
    }

    /// Reads a payload; `hops` above [`MAX_CLAIM_HOPS`] is capped to it.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let dict = decode_dict(payload)?;
        let field = |name: &str| dict.get(name.as_bytes()).and_then(Value::as_u64);
        let piece = field("piece")
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(ExtensionError::Shape("the claim has no valid `piece`"))?;
        let hops = field("hops")
            .ok_or(ExtensionError::Shape("the claim has no valid `hops`"))?
            .min(u64::from(MAX_CLAIM_HOPS)) as u8;
        Ok(Self { piece, hops })
    }
}

/// A `cs_playhead` message: the sender plays the content from byte
/// `position` on at `bitrate` bytes per second, or does not play
/// (`bitrate` 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Playhead {
    /// Byte offset in the torrent's content.
    pub position: u64,
    /// Content bytes played per second; 0 when not playing.
    pub bitrate: u64,
}

impl Playhead {
    /// The bencoded payload.
    pub fn encode(&self) -> Bytes {
        encode_dict([
            ("pos", Value::from(self.position)),
            ("rate", Value::from(self.bitrate)),
        ])
    }

    /// Reads a payload.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let dict = decode_dict(payload)?;
        let field = |name: &str| dict.get(name.as_bytes()).and_then(Value::as_u64);
        let position =
            field("pos").ok_or(ExtensionError::Shape("the playhead has no valid `pos`"))?;
        let bitrate =
            field("rate").ok_or(ExtensionError::Shape("the playhead has no valid `rate`"))?;
        Ok(Self { position, bitrate })
    }
}

fn key(s: &str) -> ByteString {
    ByteString::from(s.as_bytes().to_vec())
}

fn encode_dict(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Bytes {
    let dict: BTreeMap<ByteString, Value> = entries
        .into_iter()
        .map(|(name, value)| (key(name), value))
        .collect();
    // Encoding a `Value` into memory has no failure path.
    Bytes::from(bt_bencode::to_vec(&Value::Dict(dict)).unwrap_or_default())
}

fn decode_dict(payload: &[u8]) -> Result<BTreeMap<ByteString, Value>, ExtensionError> {
    check_bencode(payload).map_err(|e| ExtensionError::Bencode(e.to_string()))?;
    let value: Value =
        bt_bencode::from_slice(payload).map_err(|e| ExtensionError::Bencode(e.to_string()))?;
    match value {
        Value::Dict(dict) => Ok(dict),
        _ => Err(ExtensionError::Shape("not a dictionary")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_round_trips_and_ignores_unknown_keys() {
        let mut extensions = BTreeMap::new();
        extensions.insert(ORIGIN_CLAIM.to_owned(), 3);
        extensions.insert("ut_metadata".to_owned(), 0);
        let handshake = ExtensionHandshake {
            extensions,
            client: Some("chunkswarm 0.1".into()),
            request_queue: Some(512),
            metadata_size: Some(31_235),
        };
        let decoded = ExtensionHandshake::decode(&handshake.encode()).unwrap();
        assert_eq!(decoded, handshake);
        assert_eq!(decoded.id_of(ORIGIN_CLAIM), Some(3));
        assert_eq!(decoded.id_of("ut_metadata"), None, "id 0 turns it off");
        assert_eq!(decoded.id_of("ut_pex"), None);

        // A WebTorrent-style handshake with keys chunkswarm does not know.
        let foreign = b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei31235e1:pi6881e4:reqqi250e1:v14:WebTorrent 2.06:yourip4:\x7f\0\0\x01e";
        let decoded = ExtensionHandshake::decode(foreign).unwrap();
        assert_eq!(decoded.id_of("ut_pex"), Some(2));
        assert_eq!(decoded.request_queue, Some(250));
        assert_eq!(decoded.client.as_deref(), Some("WebTorrent 2.0"));
        assert_eq!(decoded.metadata_size, Some(31_235));
        assert_eq!(decoded.id_of("ut_metadata"), Some(1));
    }

    #[test]
    fn claim_round_trips_and_caps_hops() {
        let claim = OriginClaim { piece: 77, hops: 1 };
        assert_eq!(OriginClaim::decode(&claim.encode()).unwrap(), claim);
        let far = OriginClaim::decode(b"d4:hopsi200e5:piecei5ee").unwrap();
        assert_eq!(
            far,
            OriginClaim {
                piece: 5,
                hops: MAX_CLAIM_HOPS
            }
        );
    }

    #[test]
    fn playhead_round_trips() {
        let playhead = Playhead {
            position: 5 << 30,
            bitrate: 625_000,
        };
        assert_eq!(Playhead::decode(&playhead.encode()).unwrap(), playhead);
        assert_eq!(&playhead.encode()[..], b"d3:posi5368709120e4:ratei625000ee");
        for bad in [
            &b"d3:posi1ee"[..],
            b"d4:ratei1ee",
            b"d3:posi-1e4:ratei1ee",
            b"d3:pos1:x4:ratei1ee",
            b"l3:posi1ee",
        ] {
            assert!(Playhead::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostile_payloads_are_errors() {
        let deep = vec![b'l'; 10_000];
        assert!(matches!(
            ExtensionHandshake::decode(&deep),
            Err(ExtensionError::Bencode(_))
        ));
        assert!(matches!(
            OriginClaim::decode(&deep),
            Err(ExtensionError::Bencode(_))
        ));
        for bad in [
            &b""[..],
            b"le",
            b"d4:hopsi1ee",
            b"d4:hopsi1e5:piecei-1ee",
            b"d4:hopsi1e5:piecei99999999999ee",
            b"d4:hopsi-1e5:piecei1ee",
            b"d4:hops",
        ] {
            assert!(OriginClaim::decode(bad).is_err(), "{bad:?}");
        }
        assert!(ExtensionHandshake::decode(b"d1:v1:xe").is_err(), "no m");
        let huge = vec![b' '; MAX_HANDSHAKE_LEN + 1];
        assert_eq!(
            ExtensionHandshake::decode(&huge),
            Err(ExtensionError::TooLong(MAX_HANDSHAKE_LEN + 1))
        );
    }
}
