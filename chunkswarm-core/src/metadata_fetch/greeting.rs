//! What a peer told the fetch that the download will need once the fetch
//! hands the connection over ([`MetadataFetch::into_handover`]): its
//! extension handshake, which pieces it has, and whether it chokes us or
//! wants to download.
//!
//! [`MetadataFetch::into_handover`]: super::MetadataFetch::into_handover

use bytes::Bytes;

use crate::swarm::{FirstAvailability, HandshakenPeer, PeerAvailability, ProtocolViolation};
use crate::wire::metadata::MAX_METADATA_LEN;
use crate::wire::{Handshake, Message, MessageId};

/// The most pieces a torrent can have: one 20-byte hash each in the
/// largest info dictionary fetched. A `have` beyond it is out of range
/// whatever the torrent turns out to be.
pub(super) const MAX_PIECES: u32 = (MAX_METADATA_LEN / 20) as u32;

/// A peer's messages so far, as far as the download needs them.
#[derive(Debug)]
pub(super) struct Greeting {
    /// The payload of its latest extension handshake.
    pub(super) extension_handshake: Option<Bytes>,
    first: Option<FirstAvailability>,
    haves: HaveSet,
    choking: bool,
    interested: bool,
}

impl Greeting {
    /// A peer that said nothing yet: choking us, not interested.
    pub(super) fn new() -> Self {
        Self {
            extension_handshake: None,
            first: None,
            haves: HaveSet::default(),
            choking: true,
            interested: false,
        }
    }

    /// Notes a message the download will need; ignores the others. A
    /// second bitfield, `have all` or `have none`, or one after a `have`,
    /// breaks the protocol, as does a `have` no torrent can hold.
    pub(super) fn hear(&mut self, message: &Message) -> Result<(), ProtocolViolation> {
        let first = match message {
            Message::Bitfield(bytes) => FirstAvailability::Bitfield(bytes.clone()),
            Message::HaveAll => FirstAvailability::HaveAll,
            Message::HaveNone => FirstAvailability::HaveNone,
            Message::Have { piece } => return self.haves.insert(*piece),
            Message::Choke | Message::Unchoke => {
                self.choking = *message == Message::Choke;
                return Ok(());
            }
            Message::Interested | Message::NotInterested => {
                self.interested = *message == Message::Interested;
                return Ok(());
            }
            _ => return Ok(()),
        };
        if self.first.is_some() || !self.haves.is_empty() {
            let id = message.id().unwrap_or(MessageId::Bitfield);
            return Err(ProtocolViolation::UnexpectedMessage(id));
        }
        self.first = Some(first);
        Ok(())
    }

    /// The handed-over state of a peer that sent `handshake`, with the
    /// bytes after its last complete message.
    pub(super) fn into_handshaken(self, handshake: Handshake, unread: Bytes) -> HandshakenPeer {
        HandshakenPeer {
            handshake,
            extension_handshake: self.extension_handshake,
            availability: PeerAvailability {
                first: self.first,
                haves: self.haves.into_sorted(),
            },
            choking: self.choking,
            interested: self.interested,
            unread,
        }
    }
}

/// The pieces of a peer's `have`s: a bitset that grows to the highest
/// piece named, at most [`MAX_PIECES`] bits (210 KiB).
#[derive(Debug, Default)]
struct HaveSet {
    words: Vec<u64>,
    count: usize,
}

impl HaveSet {
    fn insert(&mut self, piece: u32) -> Result<(), ProtocolViolation> {
        if piece >= MAX_PIECES {
            return Err(ProtocolViolation::HaveOutOfRange { piece });
        }
        let word = (piece / 64) as usize;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (piece % 64);
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.count += 1;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn into_sorted(self) -> Vec<u32> {
        let mut pieces = Vec::with_capacity(self.count);
        for (i, word) in self.words.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                pieces.push(i as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_is_kept_in_wire_order_and_checked() {
        let mut greeting = Greeting::new();
        greeting.hear(&Message::Have { piece: 70 }).unwrap();
        greeting.hear(&Message::Have { piece: 3 }).unwrap();
        greeting.hear(&Message::Have { piece: 70 }).unwrap();
        assert_eq!(
            greeting.hear(&Message::HaveAll),
            Err(ProtocolViolation::UnexpectedMessage(MessageId::HaveAll)),
            "have all after a have"
        );
        assert_eq!(
            greeting.hear(&Message::Have { piece: MAX_PIECES }),
            Err(ProtocolViolation::HaveOutOfRange { piece: MAX_PIECES })
        );
        greeting.hear(&Message::Unchoke).unwrap();
        greeting.hear(&Message::Interested).unwrap();
        let handshake = Handshake {
            reserved: crate::wire::Reserved::NONE,
            info_hash: [1; 20],
            peer_id: [2; 20],
        };
        let peer = greeting.into_handshaken(handshake, Bytes::from_static(b"\0\0"));
        assert_eq!(peer.availability.first, None);
        assert_eq!(peer.availability.haves, [3, 70]);
        assert!(!peer.choking && peer.interested);
        assert_eq!(&peer.unread[..], b"\0\0");
    }

    #[test]
    fn only_one_bitfield_comes_first() {
        let mut greeting = Greeting::new();
        let bitfield = Message::Bitfield(Bytes::from_static(&[0x80]));
        greeting.hear(&bitfield).unwrap();
        greeting.hear(&Message::Have { piece: 1 }).unwrap();
        assert_eq!(
            greeting.hear(&bitfield),
            Err(ProtocolViolation::UnexpectedMessage(MessageId::Bitfield))
        );
    }
}
