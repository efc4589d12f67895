//! BEP 9 `ut_metadata`: a torrent's info dictionary passed between peers in
//! 16 KiB pieces, so that a magnet link is enough to join a swarm.
//!
//! [`MetadataMessage`] reads and writes the extension's payloads: a
//! bencoded dictionary (`msg_type` 0 request, 1 data, 2 reject; `piece`;
//! `total_size` in data) followed, in data messages, by the piece's bytes.
//! [`MetadataAssembler`] collects the pieces of one info dictionary from any
//! peers and hands it over only once its SHA-1 is the infohash, so nothing
//! a peer made up is ever used. [`metadata_piece`] answers a request.
//!
//! ```
//! use chunkswarm_core::metainfo::TorrentBuilder;
//! use chunkswarm_core::wire::metadata::{MetadataAssembler, MetadataMessage, metadata_piece};
//!
//! let torrent = TorrentBuilder::new().build_from_reader("x", vec![0u8; 1 << 20].as_slice())?;
//! let info = torrent.info().encoded();
//!
//! // A peer that has the torrent answers requests...
//! let answer = metadata_piece(info, 0).encode();
//! // ...and one that has only the infohash and the size assembles them.
//! let mut assembler = MetadataAssembler::new(torrent.info_hash(), info.len() as u64)?;
//! if let MetadataMessage::Data { piece, total_size, data } = MetadataMessage::decode(&answer)? {
//!     assembler.add(piece, total_size, &data)?;
//! }
//! assert_eq!(assembler.finish()?, *torrent.info());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use bt_bencode::{ByteString, Value};
use bytes::{BufMut as _, Bytes, BytesMut};

use super::extension::ExtensionError;
use crate::metainfo::{Info, InfoError, InfoHash, MAX_METAINFO_LEN, bencode_value_len};

/// The extension's name in the BEP 10 handshake's `m`.
pub const METADATA_EXTENSION: &str = "ut_metadata";

/// Bytes per metadata piece; only the last may be shorter.
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

/// The largest info dictionary accepted.
pub const MAX_METADATA_LEN: u64 = MAX_METAINFO_LEN as u64;

/// The longest bencoded header of a message: real ones are under 60 bytes.
const MAX_HEADER_LEN: usize = 256;

/// One `ut_metadata` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// Asks for one piece.
    Request {
        /// The piece index.
        piece: u32,
    },
    /// One piece, with the whole dictionary's size.
    Data {
        /// The piece index.
        piece: u32,
        /// Bytes in the whole info dictionary.
        total_size: u64,
        /// The piece's bytes (at most [`METADATA_PIECE_LEN`]).
        data: Bytes,
    },
    /// The sender will not send this piece.
    Reject {
        /// The piece index.
        piece: u32,
    },
}

impl MetadataMessage {
    /// The payload (after the extended message id).
    pub fn encode(&self) -> Bytes {
        let (kind, piece) = match self {
            Self::Request { piece } => (0u8, piece),
            Self::Data { piece, .. } => (1, piece),
            Self::Reject { piece } => (2, piece),
        };
        let mut header: BTreeMap<ByteString, Value> = BTreeMap::new();
        header.insert(key("msg_type"), Value::from(kind));
        header.insert(key("piece"), Value::from(*piece));
        if let Self::Data { total_size, .. } = self {
            header.insert(key("total_size"), Value::from(*total_size));
        }
        // Encoding a `Value` into memory has no failure path.
        let header = bt_bencode::to_vec(&Value::Dict(header)).unwrap_or_default();
        let data = match self {
            Self::Data { data, .. } => data.as_ref(),
            _ => &[],
        };
        let mut out = BytesMut::with_capacity(header.len() + data.len());
        out.put_slice(&header);
        out.put_slice(data);
        out.freeze()
    }

    /// Reads a payload. Unknown keys are ignored; an unknown `msg_type`, a
    /// missing field, data longer than a piece or a `total_size` above
    /// [`MAX_METADATA_LEN`] is an error.
    pub fn decode(payload: &Bytes) -> Result<Self, ExtensionError> {
        let window = &payload[..payload.len().min(MAX_HEADER_LEN)];
        let header_len =
            bencode_value_len(window).map_err(|e| ExtensionError::Bencode(e.to_string()))?;
        let header: Value = bt_bencode::from_slice(&payload[..header_len])
            .map_err(|e| ExtensionError::Bencode(e.to_string()))?;
        let Value::Dict(header) = header else {
            return Err(ExtensionError::Shape("not a dictionary"));
        };
        let field = |name: &str| header.get(name.as_bytes()).and_then(Value::as_u64);
        let piece = field("piece")
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(ExtensionError::Shape("no valid `piece`"))?;
        let rest = payload.slice(header_len..);
        let message = match field("msg_type") {
            Some(0) => Self::Request { piece },
            Some(2) => Self::Reject { piece },
            Some(1) => {
                let total_size = field("total_size")
                    .filter(|&n| n <= MAX_METADATA_LEN)
                    .ok_or(ExtensionError::Shape("no valid `total_size`"))?;
                if rest.len() > METADATA_PIECE_LEN {
                    return Err(ExtensionError::Shape("metadata piece longer than 16 KiB"));
                }
                return Ok(Self::Data {
                    piece,
                    total_size,
                    data: rest,
                });
            }
            _ => return Err(ExtensionError::Shape("unknown `msg_type`")),
        };
        if !rest.is_empty() {
            return Err(ExtensionError::Shape("bytes after a request or reject"));
        }
        Ok(message)
    }
}

/// The answer to a request for `piece` of the info dictionary `info`: the
/// piece, or a reject when there is no such piece.
pub fn metadata_piece(info: &Bytes, piece: u32) -> MetadataMessage {
    let start = piece as usize * METADATA_PIECE_LEN;
    if start >= info.len() {
        return MetadataMessage::Reject { piece };
    }
    let end = (start + METADATA_PIECE_LEN).min(info.len());
    MetadataMessage::Data {
        piece,
        total_size: info.len() as u64,
        data: info.slice(start..end),
    }
}

/// Why metadata from peers was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A size of zero or above [`MAX_METADATA_LEN`].
    #[error("metadata size {0} is not between 1 and {MAX_METADATA_LEN} bytes")]
    BadSize(u64),
    /// A data message's `total_size` differs from the size being assembled.
    #[error("metadata size {got} differs from the {expected} bytes announced")]
    SizeMismatch {
        /// The size being assembled.
        expected: u64,
        /// The message's.
        got: u64,
    },
    /// A piece index past the end.
    #[error("metadata piece {piece} does not exist (there are {count})")]
    NoSuchPiece {
        /// The index.
        piece: u32,
        /// Pieces in the metadata.
        count: u32,
    },
    /// A piece of the wrong length.
    #[error("metadata piece {piece} has {got} bytes, not {expected}")]
    WrongLength {
        /// The index.
        piece: u32,
        /// Its length.
        expected: usize,
        /// What came.
        got: usize,
    },
    /// Pieces are still missing.
    #[error("{0} metadata pieces are still missing")]
    Incomplete(u32),
    /// The assembled bytes are not the infohash's: some peer lied.
    #[error("the metadata's SHA-1 is not the infohash")]
    HashMismatch,
    /// The bytes hash right but are not a usable info dictionary.
    #[error("the metadata is not a valid info dictionary: {0}")]
    BadInfo(#[from] InfoError),
}

/// Collects the pieces of one info dictionary, from any peers, in any order.
#[derive(Debug, Clone)]
pub struct MetadataAssembler {
    info_hash: InfoHash,
    size: u64,
    pieces: Vec<Option<Bytes>>,
}

impl MetadataAssembler {
    /// Expects `size` bytes (the `metadata_size` a peer's extension
    /// handshake gave) hashing to `info_hash`.
    pub fn new(info_hash: InfoHash, size: u64) -> Result<Self, MetadataError> {
        if size == 0 || size > MAX_METADATA_LEN {
            return Err(MetadataError::BadSize(size));
        }
        let count = size.div_ceil(METADATA_PIECE_LEN as u64) as usize;
        Ok(Self {
            info_hash,
            size,
            pieces: vec![None; count],
        })
    }

    /// Bytes in the whole dictionary.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The pieces not received yet, in order.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_none())
            .map(|(i, _)| i as u32)
    }

    /// Takes one data message's piece. A piece received twice keeps the
    /// later copy (the hash decides at the end).
    pub fn add(&mut self, piece: u32, total_size: u64, data: &Bytes) -> Result<(), MetadataError> {
        if total_size != self.size {
            return Err(MetadataError::SizeMismatch {
                expected: self.size,
                got: total_size,
            });
        }
        let count = self.pieces.len() as u32;
        let Some(slot) = self.pieces.get_mut(piece as usize) else {
            return Err(MetadataError::NoSuchPiece { piece, count });
        };
        let start = u64::from(piece) * METADATA_PIECE_LEN as u64;
        let expected = (self.size - start).min(METADATA_PIECE_LEN as u64) as usize;
        if data.len() != expected {
            return Err(MetadataError::WrongLength {
                piece,
                expected,
                got: data.len(),
            });
        }
        *slot = Some(data.clone());
        Ok(())
    }

    /// The info dictionary, once every piece is in and their SHA-1 is the
    /// infohash. On a hash mismatch every piece is dropped, to be asked
    /// again (of other peers).
    pub fn finish(&mut self) -> Result<Info, MetadataError> {
        let missing = self.missing().count() as u32;
        if missing > 0 {
            return Err(MetadataError::Incomplete(missing));
        }
        let mut whole = BytesMut::with_capacity(self.size as usize);
        for piece in self.pieces.iter().flatten() {
            whole.put_slice(piece);
        }
        if InfoHash::of(&whole) != self.info_hash {
            self.pieces.iter_mut().for_each(|p| *p = None);
            return Err(MetadataError::HashMismatch);
        }
        Ok(Info::from_bytes(&whole)?)
    }
}

fn key(s: &str) -> ByteString {
    ByteString::from(s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests;
