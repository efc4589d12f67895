//! The BEP 3 handshake that opens every peer connection.

use bytes::{BufMut, BytesMut};

/// The protocol string every BitTorrent handshake carries after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The length of a handshake on the wire: 1 + 19 + 8 + 20 + 20 = 68 bytes.
pub const HANDSHAKE_LEN: usize = 68;

/// Offset of the reserved bytes within the handshake.
const RESERVED_AT: usize = 1 + PROTOCOL.len();
/// Offset of the info hash within the handshake.
const INFO_HASH_AT: usize = RESERVED_AT + 8;
/// Offset of the peer id within the handshake.
const PEER_ID_AT: usize = INFO_HASH_AT + 20;

/// Byte index and mask of the BEP 10 extension protocol bit.
const EXTENDED: (usize, u8) = (5, 0x10);
/// Byte index and mask of the BEP 6 fast extension bit.
const FAST: (usize, u8) = (7, 0x04);
/// Byte index and mask of the BEP 5 DHT bit (the peer may send `port`).
const DHT: (usize, u8) = (7, 0x01);

/// The eight reserved handshake bytes in which peers announce extensions.
///
/// Named helpers cover the bits chunkswarm understands; every other bit is
/// kept as received, so [`to_bytes`](Self::to_bytes) returns exactly what was
/// parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reserved([u8; 8]);

impl Reserved {
    /// No extension bits set.
    pub const NONE: Self = Self([0; 8]);

    /// Wraps raw reserved bytes, unknown bits included.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The raw reserved bytes, unknown bits included.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// Whether the BEP 6 fast extension bit (`reserved[7] & 0x04`) is set.
    pub const fn supports_fast(self) -> bool {
        self.bit(FAST)
    }

    /// Whether the BEP 10 extension protocol bit (`reserved[5] & 0x10`) is set.
    pub const fn supports_extended(self) -> bool {
        self.bit(EXTENDED)
    }

    /// Whether the BEP 5 DHT bit (`reserved[7] & 0x01`) is set.
    pub const fn supports_dht(self) -> bool {
        self.bit(DHT)
    }

    /// These bits with the BEP 6 fast extension bit set or cleared.
    #[must_use]
    pub const fn with_fast(self, on: bool) -> Self {
        self.with_bit(FAST, on)
    }

    /// These bits with the BEP 10 extension protocol bit set or cleared.
    #[must_use]
    pub const fn with_extended(self, on: bool) -> Self {
        self.with_bit(EXTENDED, on)
    }

    /// These bits with the BEP 5 DHT bit set or cleared.
    #[must_use]
    pub const fn with_dht(self, on: bool) -> Self {
        self.with_bit(DHT, on)
    }

    const fn bit(self, (byte, mask): (usize, u8)) -> bool {
        self.0[byte] & mask != 0
    }

    const fn with_bit(self, (byte, mask): (usize, u8), on: bool) -> Self {
        let mut bytes = self.0;
        if on {
            bytes[byte] |= mask;
        } else {
            bytes[byte] &= !mask;
        }
        Self(bytes)
    }
}

impl From<[u8; 8]> for Reserved {
    fn from(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }
}

impl From<Reserved> for [u8; 8] {
    fn from(reserved: Reserved) -> Self {
        reserved.0
    }
}

/// Why bytes are not a BitTorrent handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The first byte, the protocol string length, is not 19.
    #[error("handshake protocol string length is {found}, expected 19")]
    WrongPstrlen {
        /// The length byte received.
        found: u8,
    },
    /// The protocol string is not `BitTorrent protocol`.
    #[error(
        "handshake protocol string differs from \"BitTorrent protocol\" at byte {offset}: found {found:#04x}"
    )]
    WrongProtocol {
        /// Index of the first differing byte within the protocol string (0..19).
        offset: usize,
        /// The byte received there.
        found: u8,
    },
}

/// Checks the part of a handshake's first 20 bytes that `prefix` holds.
///
/// `prefix` may be shorter than 20 bytes; bytes past 20 are ignored. Used by
/// the streaming decoder to reject a stranger as soon as its first wrong byte
/// arrives.
pub(crate) fn check_prefix(prefix: &[u8]) -> Result<(), HandshakeError> {
    let Some((&pstrlen, pstr)) = prefix.split_first() else {
        return Ok(());
    };
    if usize::from(pstrlen) != PROTOCOL.len() {
        return Err(HandshakeError::WrongPstrlen { found: pstrlen });
    }
    match pstr
        .iter()
        .zip(PROTOCOL)
        .position(|(got, want)| got != want)
    {
        None => Ok(()),
        Some(offset) => Err(HandshakeError::WrongProtocol {
            offset,
            found: pstr.get(offset).copied().unwrap_or_default(),
        }),
    }
}

/// A BEP 3 handshake:
/// `<19><"BitTorrent protocol"><8 reserved bytes><20-byte info hash><20-byte peer id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Extension bits.
    pub reserved: Reserved,
    /// SHA-1 of the torrent's bencoded info dictionary.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// Parses a complete handshake.
    ///
    /// Only the length byte and the protocol string can be wrong; the other
    /// 48 bytes are taken as they are (checking the info hash is the caller's
    /// business).
    pub fn parse(bytes: &[u8; HANDSHAKE_LEN]) -> Result<Self, HandshakeError> {
        check_prefix(bytes)?;
        Ok(Self {
            reserved: Reserved(array_at(bytes, RESERVED_AT)),
            info_hash: array_at(bytes, INFO_HASH_AT),
            peer_id: array_at(bytes, PEER_ID_AT),
        })
    }

    /// The 68 bytes of this handshake.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        // Constant ranges into a fixed-size array: always in bounds.
        let mut out = [0; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..RESERVED_AT].copy_from_slice(PROTOCOL);
        out[RESERVED_AT..INFO_HASH_AT].copy_from_slice(&self.reserved.0);
        out[INFO_HASH_AT..PEER_ID_AT].copy_from_slice(&self.info_hash);
        out[PEER_ID_AT..].copy_from_slice(&self.peer_id);
        out
    }

    /// Appends the 68 bytes of this handshake to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }
}

/// The `N` bytes of `bytes` starting at `at`, zero-filled if `bytes` is too
/// short (which the fixed handshake layout rules out).
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<N>)
        .copied()
        .unwrap_or([0; N])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: Reserved::NONE.with_fast(true).with_extended(true),
            info_hash: [0xAA; 20],
            peer_id: *b"-CS0001-abcdefghijkl",
        }
    }

    #[test]
    fn layout_matches_bep3() {
        let bytes = sample().to_bytes();
        let mut expected = Vec::new();
        expected.push(19);
        expected.extend_from_slice(b"BitTorrent protocol");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        expected.extend_from_slice(&[0xAA; 20]);
        expected.extend_from_slice(b"-CS0001-abcdefghijkl");
        assert_eq!(bytes.as_slice(), expected.as_slice());

        let mut buf = BytesMut::new();
        sample().encode(&mut buf);
        assert_eq!(&buf[..], expected.as_slice());
    }

    #[test]
    fn round_trips() {
        let hs = sample();
        assert_eq!(Handshake::parse(&hs.to_bytes()), Ok(hs));
    }

    #[test]
    fn unknown_reserved_bits_pass_through() {
        let raw = [0xFF, 0x01, 0x80, 0, 0x42, 0xEF, 0x10, 0xFB];
        let hs = Handshake {
            reserved: Reserved::from_bytes(raw),
            ..sample()
        };
        let parsed = Handshake::parse(&hs.to_bytes()).unwrap();
        assert_eq!(parsed.reserved.to_bytes(), raw);
        assert!(!parsed.reserved.supports_fast());
        assert!(!parsed.reserved.supports_extended());
        assert!(parsed.reserved.supports_dht());
    }

    #[test]
    fn reserved_bits() {
        let r = Reserved::NONE;
        assert!(!r.supports_fast() && !r.supports_extended() && !r.supports_dht());
        assert_eq!(r.with_fast(true).to_bytes(), [0, 0, 0, 0, 0, 0, 0, 0x04]);
        assert_eq!(
            r.with_extended(true).to_bytes(),
            [0, 0, 0, 0, 0, 0x10, 0, 0]
        );
        assert_eq!(r.with_dht(true).to_bytes(), [0, 0, 0, 0, 0, 0, 0, 0x01]);
        let all = Reserved::from([0xFF; 8]);
        assert!(all.supports_fast() && all.supports_extended() && all.supports_dht());
        let cleared = all.with_fast(false).with_extended(false);
        assert_eq!(
            <[u8; 8]>::from(cleared),
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEF, 0xFF, 0xFB]
        );
    }

    #[test]
    fn rejects_wrong_pstrlen() {
        let mut bytes = sample().to_bytes();
        bytes[0] = 18;
        assert_eq!(
            Handshake::parse(&bytes),
            Err(HandshakeError::WrongPstrlen { found: 18 })
        );
    }

    #[test]
    fn rejects_wrong_protocol_string() {
        let mut bytes = sample().to_bytes();
        bytes[1 + 10] = b'X';
        assert_eq!(
            Handshake::parse(&bytes),
            Err(HandshakeError::WrongProtocol {
                offset: 10,
                found: b'X'
            })
        );
    }

    #[test]
    fn prefix_check_is_incremental() {
        let bytes = sample().to_bytes();
        for n in 0..=HANDSHAKE_LEN {
            assert_eq!(check_prefix(&bytes[..n]), Ok(()));
        }
        assert_eq!(
            check_prefix(b"\x13BitTorrent"),
            Ok(()),
            "a correct partial prefix is fine"
        );
        assert_eq!(
            check_prefix(b"\x13Bit"),
            Ok(()),
            "a correct partial prefix is fine"
        );
        assert_eq!(
            check_prefix(b"\x13Bot"),
            Err(HandshakeError::WrongProtocol {
                offset: 1,
                found: b'o'
            })
        );
        assert_eq!(
            check_prefix(b"GET / HTTP/1.1"),
            Err(HandshakeError::WrongPstrlen { found: b'G' })
        );
    }
}
