//! Peer wire messages and their encoding.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// Length of the big-endian `u32` length prefix in front of every message.
pub(crate) const LEN_PREFIX: usize = 4;

/// The id byte of every message that has one (all but keep-alive).
///
/// Only the ids chunkswarm speaks: BEP 3, `port` from BEP 5, the BEP 6 fast
/// extension and the BEP 10 extended message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageId {
    /// `choke` (BEP 3).
    Choke = 0,
    /// `unchoke` (BEP 3).
    Unchoke = 1,
    /// `interested` (BEP 3).
    Interested = 2,
    /// `not interested` (BEP 3).
    NotInterested = 3,
    /// `have` (BEP 3).
    Have = 4,
    /// `bitfield` (BEP 3).
    Bitfield = 5,
    /// `request` (BEP 3).
    Request = 6,
    /// `piece` (BEP 3).
    Piece = 7,
    /// `cancel` (BEP 3).
    Cancel = 8,
    /// `port` (BEP 5).
    Port = 9,
    /// `suggest piece` (BEP 6).
    Suggest = 0x0D,
    /// `have all` (BEP 6).
    HaveAll = 0x0E,
    /// `have none` (BEP 6).
    HaveNone = 0x0F,
    /// `reject request` (BEP 6).
    RejectRequest = 0x10,
    /// `allowed fast` (BEP 6).
    AllowedFast = 0x11,
    /// `extended` (BEP 10).
    Extended = 20,
}

impl MessageId {
    /// The id for a wire byte, if it is one chunkswarm speaks.
    pub const fn from_u8(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::Choke,
            1 => Self::Unchoke,
            2 => Self::Interested,
            3 => Self::NotInterested,
            4 => Self::Have,
            5 => Self::Bitfield,
            6 => Self::Request,
            7 => Self::Piece,
            8 => Self::Cancel,
            9 => Self::Port,
            0x0D => Self::Suggest,
            0x0E => Self::HaveAll,
            0x0F => Self::HaveNone,
            0x10 => Self::RejectRequest,
            0x11 => Self::AllowedFast,
            20 => Self::Extended,
            _ => return None,
        })
    }

    /// The wire byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The message's name as the BEPs spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Choke => "choke",
            Self::Unchoke => "unchoke",
            Self::Interested => "interested",
            Self::NotInterested => "not interested",
            Self::Have => "have",
            Self::Bitfield => "bitfield",
            Self::Request => "request",
            Self::Piece => "piece",
            Self::Cancel => "cancel",
            Self::Port => "port",
            Self::Suggest => "suggest piece",
            Self::HaveAll => "have all",
            Self::HaveNone => "have none",
            Self::RejectRequest => "reject request",
            Self::AllowedFast => "allowed fast",
            Self::Extended => "extended",
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A block of a piece as `request`, `cancel` and `reject request` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRequest {
    /// Piece index.
    pub index: u32,
    /// Byte offset of the block within the piece.
    pub begin: u32,
    /// Block length in bytes.
    pub length: u32,
}

/// One peer wire message (everything after the handshake).
///
/// Payloads are [`Bytes`]: the decoder splits them off its buffer without
/// copying. A decoded `piece` block shares its allocation with the bytes that
/// arrived around it, so copy it into the piece buffer and drop it rather
/// than keeping many blocks alive.
///
/// Which messages a peer may send depends on what the handshake negotiated
/// (BEP 6 messages need the fast bit, `extended` the BEP 10 bit, `port` the
/// DHT bit) and on the connection state (`have all` only first, ...). This
/// codec reads and writes every message regardless; enforcing those rules is
/// the connection's job.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A message of length 0, sent to keep an idle connection open.
    KeepAlive,
    /// `choke`: the sender will not serve requests.
    Choke,
    /// `unchoke`: the sender will serve requests.
    Unchoke,
    /// `interested`: the sender wants pieces the receiver has.
    Interested,
    /// `not interested`.
    NotInterested,
    /// `have`: the sender now has this piece.
    Have {
        /// Piece index.
        piece: u32,
    },
    /// `bitfield`: the pieces the sender has, in BEP 3 bit order, as received.
    Bitfield(Bytes),
    /// `request`: asks for a block.
    Request(BlockRequest),
    /// `piece`: a block of data.
    Piece {
        /// Piece index.
        index: u32,
        /// Byte offset of the block within the piece.
        begin: u32,
        /// The block's bytes.
        block: Bytes,
    },
    /// `cancel`: withdraws a request.
    Cancel(BlockRequest),
    /// `port` (BEP 5): the sender's DHT port.
    Port(u16),
    /// `suggest piece` (BEP 6).
    Suggest {
        /// Piece index.
        piece: u32,
    },
    /// `have all` (BEP 6): the sender has every piece.
    HaveAll,
    /// `have none` (BEP 6): the sender has no piece.
    HaveNone,
    /// `reject request` (BEP 6): the sender will not serve this request.
    RejectRequest(BlockRequest),
    /// `allowed fast` (BEP 6): the receiver may request this piece while choked.
    AllowedFast {
        /// Piece index.
        piece: u32,
    },
    /// `extended` (BEP 10), passed through uninterpreted.
    Extended {
        /// Extended message id (0 is the extension handshake).
        id: u8,
        /// The payload after the extended id, usually bencoded.
        payload: Bytes,
    },
}

impl Message {
    /// The message id, or `None` for keep-alive, which has none.
    pub const fn id(&self) -> Option<MessageId> {
        Some(match self {
            Self::KeepAlive => return None,
            Self::Choke => MessageId::Choke,
            Self::Unchoke => MessageId::Unchoke,
            Self::Interested => MessageId::Interested,
            Self::NotInterested => MessageId::NotInterested,
            Self::Have { .. } => MessageId::Have,
            Self::Bitfield(_) => MessageId::Bitfield,
            Self::Request(_) => MessageId::Request,
            Self::Piece { .. } => MessageId::Piece,
            Self::Cancel(_) => MessageId::Cancel,
            Self::Port(_) => MessageId::Port,
            Self::Suggest { .. } => MessageId::Suggest,
            Self::HaveAll => MessageId::HaveAll,
            Self::HaveNone => MessageId::HaveNone,
            Self::RejectRequest(_) => MessageId::RejectRequest,
            Self::AllowedFast { .. } => MessageId::AllowedFast,
            Self::Extended { .. } => MessageId::Extended,
        })
    }

    /// The number of bytes [`encode`](Self::encode) appends, length prefix included.
    pub fn encoded_len(&self) -> usize {
        LEN_PREFIX.saturating_add(self.body_len())
    }

    /// What the length prefix counts: the id byte and the payload.
    fn body_len(&self) -> usize {
        match self {
            Self::KeepAlive => 0,
            Self::Choke
            | Self::Unchoke
            | Self::Interested
            | Self::NotInterested
            | Self::HaveAll
            | Self::HaveNone => 1,
            Self::Port(_) => 3,
            Self::Have { .. } | Self::Suggest { .. } | Self::AllowedFast { .. } => 5,
            Self::Request(_) | Self::Cancel(_) | Self::RejectRequest(_) => 13,
            Self::Bitfield(bits) => bits.len().saturating_add(1),
            Self::Piece { block, .. } => block.len().saturating_add(9),
            Self::Extended { payload, .. } => payload.len().saturating_add(2),
        }
    }

    /// Appends the message to `dst`: a big-endian `u32` length, the id byte
    /// and the payload, all integers big-endian.
    ///
    /// # Panics
    ///
    /// If a payload is so long (about 4 GiB) that the length does not fit the
    /// `u32` prefix; no peer would accept such a message anyway.
    pub fn encode(&self, dst: &mut BytesMut) {
        let Ok(len) = u32::try_from(self.body_len()) else {
            panic!(
                "{} payload of {} bytes does not fit a peer wire message",
                self.id().map_or("keep-alive", MessageId::name),
                self.body_len()
            );
        };
        dst.reserve(self.encoded_len());
        dst.put_u32(len);
        if let Some(id) = self.id() {
            dst.put_u8(id.as_u8());
        }
        match self {
            Self::KeepAlive
            | Self::Choke
            | Self::Unchoke
            | Self::Interested
            | Self::NotInterested
            | Self::HaveAll
            | Self::HaveNone => {}
            Self::Have { piece } | Self::Suggest { piece } | Self::AllowedFast { piece } => {
                dst.put_u32(*piece);
            }
            Self::Bitfield(bits) => dst.put_slice(bits),
            Self::Request(r) | Self::Cancel(r) | Self::RejectRequest(r) => {
                dst.put_u32(r.index);
                dst.put_u32(r.begin);
                dst.put_u32(r.length);
            }
            Self::Piece {
                index,
                begin,
                block,
            } => {
                dst.put_u32(*index);
                dst.put_u32(*begin);
                dst.put_slice(block);
            }
            Self::Port(port) => dst.put_u16(*port),
            Self::Extended { id, payload } => {
                dst.put_u8(*id);
                dst.put_slice(payload);
            }
        }
    }

    /// The encoded message as its own buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// Payloads longer than this are shown by length only in `Debug` output.
const DEBUG_PAYLOAD_MAX: usize = 32;

/// Shows a payload in full when short, by its length when long, so that
/// logging a 16 KiB `piece` does not print 16 KiB.
struct PayloadDebug<'a>(&'a Bytes);

impl fmt::Debug for PayloadDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= DEBUG_PAYLOAD_MAX {
            fmt::Debug::fmt(self.0, f)
        } else {
            write!(f, "<{} bytes>", self.0.len())
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeepAlive => f.write_str("KeepAlive"),
            Self::Choke => f.write_str("Choke"),
            Self::Unchoke => f.write_str("Unchoke"),
            Self::Interested => f.write_str("Interested"),
            Self::NotInterested => f.write_str("NotInterested"),
            Self::HaveAll => f.write_str("HaveAll"),
            Self::HaveNone => f.write_str("HaveNone"),
            Self::Have { piece } => f.debug_struct("Have").field("piece", piece).finish(),
            Self::Suggest { piece } => f.debug_struct("Suggest").field("piece", piece).finish(),
            Self::AllowedFast { piece } => {
                f.debug_struct("AllowedFast").field("piece", piece).finish()
            }
            Self::Bitfield(bits) => f
                .debug_tuple("Bitfield")
                .field(&PayloadDebug(bits))
                .finish(),
            Self::Request(r) => f.debug_tuple("Request").field(r).finish(),
            Self::Cancel(r) => f.debug_tuple("Cancel").field(r).finish(),
            Self::RejectRequest(r) => f.debug_tuple("RejectRequest").field(r).finish(),
            Self::Piece {
                index,
                begin,
                block,
            } => f
                .debug_struct("Piece")
                .field("index", index)
                .field("begin", begin)
                .field("block", &PayloadDebug(block))
                .finish(),
            Self::Port(port) => f.debug_tuple("Port").field(port).finish(),
            Self::Extended { id, payload } => f
                .debug_struct("Extended")
                .field("id", id)
                .field("payload", &PayloadDebug(payload))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(msg: &Message) -> Vec<u8> {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        assert_eq!(buf.len(), msg.encoded_len(), "encoded_len of {msg:?}");
        assert_eq!(msg.to_bytes(), buf, "to_bytes of {msg:?}");
        buf.to_vec()
    }

    fn req(index: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            index,
            begin,
            length,
        }
    }

    #[test]
    fn bep3_byte_layouts() {
        let cases: &[(Message, &str)] = &[
            (Message::KeepAlive, "00000000"),
            (Message::Choke, "0000000100"),
            (Message::Unchoke, "0000000101"),
            (Message::Interested, "0000000102"),
            (Message::NotInterested, "0000000103"),
            (Message::Have { piece: 7 }, "000000050400000007"),
            (
                Message::Bitfield(Bytes::from_static(&[0b1010_0000, 0xFF])),
                "0000000305a0ff",
            ),
            (
                Message::Request(req(1, 0x4000, 0x4000)),
                "0000000d06 00000001 00004000 00004000",
            ),
            (
                Message::Piece {
                    index: 2,
                    begin: 0x8000,
                    block: Bytes::from_static(b"abc"),
                },
                "0000000c07 00000002 00008000 616263",
            ),
            (
                Message::Cancel(req(0x0102_0304, 0, 16384)),
                "0000000d08 01020304 00000000 00004000",
            ),
            (Message::Port(6881), "00000003091ae1"),
        ];
        for (msg, hex) in cases {
            let expected = hex::decode(hex.replace(' ', "")).unwrap();
            assert_eq!(bytes_of(msg), expected, "{msg:?}");
        }
    }

    #[test]
    fn bep6_and_bep10_byte_layouts() {
        let cases: &[(Message, &str)] = &[
            (Message::Suggest { piece: 3 }, "000000050d00000003"),
            (Message::HaveAll, "000000010e"),
            (Message::HaveNone, "000000010f"),
            (
                Message::RejectRequest(req(5, 16384, 16384)),
                "0000000d10 00000005 00004000 00004000",
            ),
            (Message::AllowedFast { piece: 9 }, "000000051100000009"),
            (
                Message::Extended {
                    id: 0,
                    payload: Bytes::from_static(b"de"),
                },
                "0000000414 00 6465",
            ),
            (
                Message::Extended {
                    id: 3,
                    payload: Bytes::new(),
                },
                "000000021403",
            ),
        ];
        for (msg, hex) in cases {
            let expected = hex::decode(hex.replace(' ', "")).unwrap();
            assert_eq!(bytes_of(msg), expected, "{msg:?}");
        }
    }

    #[test]
    fn ids_round_trip() {
        for byte in 0..=u8::MAX {
            if let Some(id) = MessageId::from_u8(byte) {
                assert_eq!(id.as_u8(), byte);
            }
        }
        let known = (0..=u8::MAX).filter_map(MessageId::from_u8).count();
        assert_eq!(known, 16);
        assert_eq!(MessageId::from_u8(10), None);
        assert_eq!(MessageId::from_u8(21), None);
        assert_eq!(MessageId::RejectRequest.to_string(), "reject request");
    }

    #[test]
    fn debug_elides_long_payloads() {
        let msg = Message::Piece {
            index: 1,
            begin: 0,
            block: Bytes::from(vec![0; 16384]),
        };
        assert_eq!(
            format!("{msg:?}"),
            "Piece { index: 1, begin: 0, block: <16384 bytes> }"
        );
        let short = Message::Bitfield(Bytes::from_static(b"\xff"));
        assert_eq!(format!("{short:?}"), r#"Bitfield(b"\xff")"#);
    }
}
