//! Admitting a connection that another engine opened on this torrent: the
//! [`MetadataFetch`](crate::metadata_fetch::MetadataFetch) of a magnet
//! link hands its connections to the download once the info dictionary is
//! in, so that the download starts on them instead of reconnecting.
//!
//! See [`PeerHandover`] for what such a connection must carry.

use bytes::Bytes;
use web_time::Instant;

use super::peer::{Peer, WireState};
use super::{PeerKey, Swarm};
use crate::swarm::CloseReason;
use crate::wire::extension::EXTENSION_HANDSHAKE_ID;
use crate::wire::{Decoder, DecoderLimits, Handshake, HandshakeDecoder, Message};

/// How far a connection handed to [`Swarm::admit_peer`] has come.
///
/// # What the connection must carry
///
/// A handed-over connection has sent **our handshake** (the fast and
/// extension bits, the swarm's own peer id and the torrent's infohash) and,
/// once the peer's handshake was in, **`have none`** if the peer set the
/// fast bit and **an extension handshake** if it set the extension bit;
/// nothing else: no `interested`, no `unchoke`, no request, no piece. This
/// is what a [`MetadataFetch`](crate::metadata_fetch::MetadataFetch) sends.
/// Of what the peer sent, only what [`HandshakenPeer`] holds is carried
/// over: a `request` before the handover is dropped unanswered (we had
/// said we hold nothing, and choke it), and so are `suggest` and `allowed
/// fast`, which the swarm ignores.
///
/// The swarm then sends what it would have sent on a connection of its
/// own: a `have` for each piece held (a bitfield may only come first), a
/// second extension handshake with everything it offers, and goes on as
/// if it had read what the peer said so far ([`HandshakenPeer`]). A peer
/// whose earlier messages the swarm does not accept (a bitfield of the
/// wrong length, a `have` out of range) is closed with the reason it
/// would have been given had the swarm read them itself.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerHandover {
    /// Our handshake went out; the peer's has not fully arrived.
    Handshaking {
        /// What arrived of it (and anything after it), not yet read.
        received: Bytes,
    },
    /// Both handshakes are done.
    Handshaken(Box<HandshakenPeer>),
}

/// What a peer past its handshake has said so far.
#[derive(Debug, Clone, PartialEq)]
pub struct HandshakenPeer {
    /// Its handshake: reserved bits and peer id (the infohash is checked).
    pub handshake: Handshake,
    /// The payload of its latest BEP 10 extension handshake, if any.
    pub extension_handshake: Option<Bytes>,
    /// Which pieces it said it has.
    pub availability: PeerAvailability,
    /// It is choking us (it is until it says `unchoke`).
    pub choking: bool,
    /// It is interested in us.
    pub interested: bool,
    /// Bytes after its last complete message: the start of the next one.
    pub unread: Bytes,
}

/// The availability messages a peer sent, in the order the wire allows:
/// at most one of bitfield, `have all` and `have none`, first, then haves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAvailability {
    /// Its bitfield, `have all` or `have none`, when that was its first
    /// availability message.
    pub first: Option<FirstAvailability>,
    /// The pieces its `have` messages named, each once, ascending
    /// (unchecked against the torrent: the swarm checks them).
    pub haves: Vec<u32>,
}

/// A message that may only be a peer's first availability message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAvailability {
    /// `bitfield` with its payload, unchecked against the torrent.
    Bitfield(Bytes),
    /// `have all` (fast extension).
    HaveAll,
    /// `have none` (fast extension).
    HaveNone,
}

impl FirstAvailability {
    fn into_message(self) -> Message {
        match self {
            Self::Bitfield(bytes) => Message::Bitfield(bytes),
            Self::HaveAll => Message::HaveAll,
            Self::HaveNone => Message::HaveNone,
        }
    }
}

impl Swarm {
    /// Takes over an open connection whose handshake another engine began
    /// on this torrent (see [`PeerHandover`] for what it must have sent):
    /// no handshake goes out again. A connection the swarm would
    /// have refused (its own peer id, a duplicate, a banned peer, too many
    /// peers, a broken message) is closed with an [`Output::Close`].
    /// Reusing the key of a connection the swarm still knows replaces it.
    ///
    /// [`Output::Close`]: super::Output::Close
    pub fn admit_peer(&mut self, now: Instant, key: PeerKey, handover: PeerHandover) {
        if self.peers.contains_key(&key) {
            self.drop_peer(now, key, CloseReason::Duplicate, true);
        }
        let limits = self.decoder_limits();
        let pieces = self.layout.piece_count();
        match handover {
            PeerHandover::Handshaking { received } => {
                let peer = Peer::new(now, HandshakeDecoder::new(limits), pieces);
                self.peers.insert(key, peer);
                self.receive(now, key, &received);
            }
            PeerHandover::Handshaken(peer) => self.admit_handshaken(now, key, *peer),
        }
        self.serve_uploads(now);
    }

    /// Refuses the peer with this id from now on, closing its connection
    /// if one is open: for the peers a metadata fetch banned for sending a
    /// copy of the dictionary that was not the torrent's.
    pub fn ban_peer_id(&mut self, now: Instant, peer_id: [u8; 20]) {
        self.banned_ids.insert(peer_id);
        let connected = self
            .peers
            .iter()
            .find(|(_, p)| p.peer_id == Some(peer_id))
            .map(|(key, _)| *key);
        if let Some(key) = connected {
            self.drop_peer(now, key, CloseReason::Banned, true);
        }
    }

    /// The limits of a connection's decoder once the torrent is known.
    pub(super) fn decoder_limits(&self) -> DecoderLimits {
        DecoderLimits::new().with_piece_count(self.layout.piece_count())
    }

    fn admit_handshaken(&mut self, now: Instant, key: PeerKey, peer: HandshakenPeer) {
        let limits = self.decoder_limits();
        let said_nothing = peer.availability.first.is_none() && peer.availability.haves.is_empty();
        let mut state = Peer::new(
            now,
            HandshakeDecoder::new(limits),
            self.layout.piece_count(),
        );
        state.wire = WireState::Active {
            decoder: Decoder::new(limits),
            first: said_nothing,
        };
        self.peers.insert(key, state);
        if let Some(reason) = self.refusal(&peer.handshake) {
            return self.drop_peer(now, key, reason, true);
        }
        // The peer heard `have none` (or nothing): what we hold follows.
        let haves: Vec<Message> = self
            .have
            .iter_ones()
            .map(|piece| Message::Have { piece: piece.get() })
            .collect();
        self.greet(now, key, &peer.handshake, &haves);
        self.replay(now, key, peer);
    }

    /// Acts on what the peer said before the handover, in the order the
    /// swarm would have read it, then reads its unread bytes.
    fn replay(&mut self, now: Instant, key: PeerKey, peer: HandshakenPeer) {
        let mut said = Vec::new();
        if let Some(payload) = peer.extension_handshake {
            said.push((
                Message::Extended {
                    id: EXTENSION_HANDSHAKE_ID,
                    payload,
                },
                false,
            ));
        }
        if let Some(first) = peer.availability.first {
            said.push((first.into_message(), true));
        }
        let haves = peer.availability.haves.into_iter();
        said.extend(haves.map(|piece| (Message::Have { piece }, false)));
        if !peer.choking {
            said.push((Message::Unchoke, false));
        }
        if peer.interested {
            said.push((Message::Interested, false));
        }
        for (message, first) in said {
            if !self.peers.contains_key(&key) {
                return;
            }
            self.handle_message(now, key, message, first);
        }
        // Reads the rest, and asks for blocks if there is anything to ask.
        self.receive(now, key, &peer.unread);
    }
}
