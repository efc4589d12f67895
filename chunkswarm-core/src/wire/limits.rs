//! The bounds the decoder checks every declared length against.

use super::decoder::DecodeError;
use super::message::{LEN_PREFIX, MessageId};

/// Bytes the length prefix counts before a `piece` block: id, index, begin.
pub(crate) const PIECE_HEADER: u32 = 9;
/// Bytes the length prefix counts before an `extended` payload: id, extended id.
pub(crate) const EXTENDED_HEADER: u32 = 2;
/// Bytes the length prefix counts before a `bitfield` payload: the id.
pub(crate) const BITFIELD_HEADER: u32 = 1;

/// How long a received `bitfield` payload may be, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitfieldLen {
    /// Any length up to this many bytes, for when the piece count is unknown.
    AtMost(u32),
    /// Exactly this many bytes; anything else is a protocol error (BEP 3).
    Exactly(u32),
}

impl BitfieldLen {
    /// Exactly `ceil(pieces / 8)` bytes, as BEP 3 requires for a torrent of
    /// `pieces` pieces.
    pub const fn for_pieces(pieces: u32) -> Self {
        Self::Exactly(pieces.div_ceil(8))
    }

    /// The largest length allowed.
    pub const fn max(self) -> u32 {
        match self {
            Self::AtMost(n) | Self::Exactly(n) => n,
        }
    }
}

/// The bounds a [`Decoder`](super::Decoder) checks every declared length
/// against, as soon as a message's length prefix and id byte have arrived and
/// before it buffers the body.
///
/// Fixed-size messages (`have`, `request`, ...) need no limit: any other
/// length is an error. Build from [`Default`] and adjust the public fields,
/// or use [`with_piece_count`](Self::with_piece_count) once the torrent is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DecoderLimits {
    /// The largest block a `piece` may carry and a `request`, `cancel` or
    /// `reject request` may name, in bytes.
    /// Default [`DEFAULT_MAX_BLOCK_LEN`](Self::DEFAULT_MAX_BLOCK_LEN).
    pub max_block_len: u32,
    /// The allowed `bitfield` payload length.
    /// Default `AtMost(`[`DEFAULT_MAX_BITFIELD_LEN`](Self::DEFAULT_MAX_BITFIELD_LEN)`)`.
    pub bitfield_len: BitfieldLen,
    /// The largest `extended` payload (after the extended id byte), in bytes.
    /// Default [`DEFAULT_MAX_EXTENDED_LEN`](Self::DEFAULT_MAX_EXTENDED_LEN).
    pub max_extended_len: u32,
}

impl DecoderLimits {
    /// 128 KiB: eight times the 16 KiB block every client requests, so that
    /// peers using larger blocks still work while a message stays small.
    pub const DEFAULT_MAX_BLOCK_LEN: u32 = 128 * 1024;

    /// 256 KiB, room for 2 Mi pieces: more than the 20-byte piece hashes
    /// that fit in the largest `.torrent` the metainfo parser accepts (32 MiB).
    /// Prefer [`with_piece_count`](Self::with_piece_count).
    pub const DEFAULT_MAX_BITFIELD_LEN: u32 = 256 * 1024;

    /// 1 MiB: BEP 9 metadata messages carry 16 KiB pieces and PEX lists are
    /// small; this leaves ample room for other extensions.
    pub const DEFAULT_MAX_EXTENDED_LEN: u32 = 1024 * 1024;

    /// The default limits.
    pub const fn new() -> Self {
        Self {
            max_block_len: Self::DEFAULT_MAX_BLOCK_LEN,
            bitfield_len: BitfieldLen::AtMost(Self::DEFAULT_MAX_BITFIELD_LEN),
            max_extended_len: Self::DEFAULT_MAX_EXTENDED_LEN,
        }
    }

    /// These limits, with a `bitfield` required to be exactly right for a
    /// torrent of `pieces` pieces.
    #[must_use]
    pub const fn with_piece_count(self, pieces: u32) -> Self {
        Self {
            bitfield_len: BitfieldLen::for_pieces(pieces),
            ..self
        }
    }

    /// The largest message the decoder accepts, length prefix included: the
    /// most it ever buffers once it has decoded all complete messages.
    pub fn max_frame_len(&self) -> usize {
        let body = [
            13,
            u64::from(BITFIELD_HEADER) + u64::from(self.bitfield_len.max()),
            u64::from(PIECE_HEADER) + u64::from(self.max_block_len),
            u64::from(EXTENDED_HEADER) + u64::from(self.max_extended_len),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        usize::try_from(body.saturating_add(LEN_PREFIX as u64)).unwrap_or(usize::MAX)
    }

    /// Checks a message's declared length (which counts the id byte) against
    /// its kind, before any of its body is buffered.
    pub(crate) fn check_header(&self, id: u8, len: u32) -> Result<MessageId, DecodeError> {
        let Some(id) = MessageId::from_u8(id) else {
            return Err(DecodeError::UnknownId { id, len });
        };
        let (header, max) = match id {
            MessageId::Bitfield => (BITFIELD_HEADER, self.bitfield_len.max()),
            MessageId::Piece => (PIECE_HEADER, self.max_block_len),
            MessageId::Extended => (EXTENDED_HEADER, self.max_extended_len),
            fixed => {
                let expected = fixed_len(fixed);
                return if len == expected {
                    Ok(fixed)
                } else {
                    Err(DecodeError::WrongLength { id, len, expected })
                };
            }
        };
        let Some(payload_len) = len.checked_sub(header) else {
            return Err(DecodeError::TooShort {
                id,
                len,
                min: header,
            });
        };
        if let (MessageId::Bitfield, BitfieldLen::Exactly(expected)) = (id, self.bitfield_len) {
            if payload_len != expected {
                return Err(DecodeError::BitfieldLength {
                    len: payload_len,
                    expected,
                });
            }
        }
        if payload_len > max {
            return Err(DecodeError::TooLong {
                id,
                payload_len,
                max,
            });
        }
        Ok(id)
    }
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self::new()
    }
}

/// The declared length of a message with a fixed layout, id byte included;
/// the header length for the variable ones.
pub(crate) const fn fixed_len(id: MessageId) -> u32 {
    match id {
        MessageId::Choke
        | MessageId::Unchoke
        | MessageId::Interested
        | MessageId::NotInterested
        | MessageId::HaveAll
        | MessageId::HaveNone => 1,
        MessageId::Port => 3,
        MessageId::Have | MessageId::Suggest | MessageId::AllowedFast => 5,
        MessageId::Request | MessageId::Cancel | MessageId::RejectRequest => 13,
        MessageId::Bitfield => BITFIELD_HEADER,
        MessageId::Piece => PIECE_HEADER,
        MessageId::Extended => EXTENDED_HEADER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let limits = DecoderLimits::default();
        assert_eq!(limits.max_block_len, 128 * 1024);
        assert_eq!(limits.bitfield_len, BitfieldLen::AtMost(256 * 1024));
        assert_eq!(limits.max_extended_len, 1024 * 1024);
        assert_eq!(limits.max_frame_len(), 4 + 2 + 1024 * 1024);
    }

    #[test]
    fn piece_count_sets_exact_bitfield() {
        assert_eq!(BitfieldLen::for_pieces(0), BitfieldLen::Exactly(0));
        assert_eq!(BitfieldLen::for_pieces(1), BitfieldLen::Exactly(1));
        assert_eq!(BitfieldLen::for_pieces(8), BitfieldLen::Exactly(1));
        assert_eq!(BitfieldLen::for_pieces(9), BitfieldLen::Exactly(2));
        assert_eq!(
            BitfieldLen::for_pieces(u32::MAX),
            BitfieldLen::Exactly(1 << 29)
        );
        let limits = DecoderLimits::new().with_piece_count(100);
        assert_eq!(limits.bitfield_len, BitfieldLen::Exactly(13));
        assert_eq!(limits.max_block_len, DecoderLimits::DEFAULT_MAX_BLOCK_LEN);
    }

    #[test]
    fn max_frame_len_does_not_overflow() {
        let limits = DecoderLimits {
            max_block_len: u32::MAX,
            bitfield_len: BitfieldLen::AtMost(u32::MAX),
            max_extended_len: u32::MAX,
        };
        assert!(limits.max_frame_len() >= usize::try_from(u32::MAX).unwrap_or(usize::MAX));
        assert_eq!(
            limits.check_header(MessageId::Piece.as_u8(), u32::MAX),
            Ok(MessageId::Piece)
        );
    }
}
