//! Fetching a torrent's info dictionary from peers when only its infohash
//! is known (a magnet link without an `xs`): the peer side of BEP 9
//! `ut_metadata`, sans-IO like the [`Swarm`](crate::swarm::Swarm).
//!
//! A [`MetadataFetch`] talks the BitTorrent wire protocol to the peers it is
//! given: it sends the handshake (fast and extension bits), `have none` and
//! an extension handshake offering `ut_metadata`, reads each peer's
//! `metadata_size`, and asks **one peer at a time** for every piece of the
//! dictionary. The pieces are put together by a
//! [`MetadataAssembler`], which hands the dictionary over only once its
//! SHA-1 is the infohash. Because each copy comes whole from one peer, a
//! copy that fails names its sender: that peer is closed and banned
//! ([`FetchOutput::BadMetadata`]), and the next peer is asked. A peer that
//! rejects a piece, or stalls for [`PIECE_TIMEOUT`], is set aside for
//! [`RETRY_AFTER`] and the next one is asked. Metadata is small (a 4 GiB
//! film in 1 MiB pieces has 80 KiB of it), so asking one peer costs little.
//!
//! # Call order
//!
//! As with the swarm:
//!
//! 1. feed every input with the current time:
//!    [`handle_peer_connected`](MetadataFetch::handle_peer_connected),
//!    [`handle_peer_data`](MetadataFetch::handle_peer_data),
//!    [`handle_peer_closed`](MetadataFetch::handle_peer_closed);
//! 2. drain [`poll_output`](MetadataFetch::poll_output) until `None`,
//!    carrying out each [`FetchOutput`];
//! 3. call [`handle_timeout`](MetadataFetch::handle_timeout) at
//!    [`poll_timeout`](MetadataFetch::poll_timeout).
//!
//! [`FetchOutput::Done`] comes once, with the verified [`Info`]. After it
//! the fetch asks nothing more but keeps its connections: it goes on
//! taking input (new connections get our handshake, bytes are read and
//! what the download needs of them is kept, and a peer that cannot give
//! metadata is no longer closed for it) until the caller hands the
//! connections to the download with
//! [`into_handover`](MetadataFetch::into_handover) and
//! [`Swarm::admit_peer`](crate::swarm::Swarm::admit_peer), so that the
//! download starts on them instead of connecting again. Bytes from a peer
//! never make it panic: a peer that breaks the protocol is closed
//! ([`FetchCloseReason`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use web_time::Instant;

use crate::metainfo::{Info, InfoHash};
use crate::swarm::{PeerHandover, PeerKey, ProtocolViolation};
use crate::wire::extension::{EXTENSION_HANDSHAKE_ID, ExtensionError, ExtensionHandshake};
use crate::wire::metadata::{
    MAX_METADATA_LEN, METADATA_EXTENSION, MetadataAssembler, MetadataError, MetadataMessage,
};
use crate::wire::{
    DecodeError, Decoder, DecoderLimits, Handshake, HandshakeDecoder, Message, Reserved,
};

use greeting::Greeting;

/// How long the peer being asked may go without sending a piece.
pub const PIECE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a peer that rejected or stalled is left alone before it is
/// asked again.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);

/// Requests outstanding at once with the peer being asked.
const PIPELINE: usize = 8;

/// The extended id peers send `ut_metadata` messages to us with.
const LOCAL_METADATA_ID: u8 = 2;

/// A 20-byte peer id.
type PeerId = [u8; 20];

/// Why the fetch closed a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchCloseReason {
    /// The peer broke the wire protocol or sent a malformed message.
    Protocol(ProtocolViolation),
    /// The handshake named another torrent.
    WrongTorrent,
    /// The peer is ourselves, or already connected under this id.
    Duplicate,
    /// The peer sent metadata that is not the torrent's, now or before.
    Banned,
    /// The peer cannot give metadata: no extension protocol, no
    /// `ut_metadata`, or no usable `metadata_size`.
    NoMetadata,
}

/// What the caller carries out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchOutput {
    /// Write these bytes to the peer's channel, after everything sent before.
    Send {
        /// The connection.
        peer: PeerKey,
        /// Wire bytes.
        data: Bytes,
    },
    /// Close the connection; the fetch has forgotten it already.
    Close {
        /// The connection.
        peer: PeerKey,
        /// Why.
        reason: FetchCloseReason,
    },
    /// A peer sent metadata that is not the torrent's (a [`Close`] with
    /// [`FetchCloseReason::Banned`] follows); other peers are asked.
    ///
    /// [`Close`]: FetchOutput::Close
    BadMetadata {
        /// The peer's id.
        peer_id: PeerId,
        /// What was wrong.
        error: MetadataError,
    },
    /// The info dictionary, its SHA-1 checked against the infohash.
    Done(Info),
    /// The dictionary hashes to the infohash but is not a usable info
    /// dictionary: the torrent itself is broken and no peer can help.
    Failed(MetadataError),
}

enum Wire {
    Handshaking(HandshakeDecoder),
    /// Past the peer's handshake.
    Active {
        decoder: Decoder,
        handshake: Handshake,
    },
}

struct FetchPeer {
    wire: Wire,
    /// What the download will need of what it said.
    greeting: Greeting,
    /// The id the peer wants `ut_metadata` messages sent with.
    metadata_id: Option<u8>,
    /// The size of the dictionary it offers.
    size: Option<u64>,
    /// Not asked again before this moment (it rejected or stalled).
    resting_until: Option<Instant>,
}

impl FetchPeer {
    fn peer_id(&self) -> Option<PeerId> {
        match &self.wire {
            Wire::Active { handshake, .. } => Some(handshake.peer_id),
            Wire::Handshaking(_) => None,
        }
    }

    /// The connection as the download takes it over.
    fn into_handover(self) -> PeerHandover {
        match self.wire {
            Wire::Active { decoder, handshake } => PeerHandover::Handshaken(Box::new(
                self.greeting
                    .into_handshaken(handshake, decoder.into_unread()),
            )),
            Wire::Handshaking(decoder) => PeerHandover::Handshaking {
                received: decoder.into_unread(),
            },
        }
    }
}

/// The peer being asked for the whole dictionary.
struct Asking {
    peer: PeerKey,
    assembler: MetadataAssembler,
    /// Pieces asked for and not received.
    outstanding: BTreeSet<u32>,
    /// When the peer is given up unless a piece arrives.
    deadline: Instant,
}

/// Fetches one torrent's info dictionary from peers: see the
/// [module docs](self).
pub struct MetadataFetch {
    info_hash: InfoHash,
    peer_id: PeerId,
    peers: BTreeMap<PeerKey, FetchPeer>,
    asking: Option<Asking>,
    banned: BTreeSet<PeerId>,
    outputs: VecDeque<FetchOutput>,
    done: bool,
}

impl std::fmt::Debug for MetadataFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataFetch")
            .field("info_hash", &self.info_hash)
            .field("peers", &self.peers.len())
            .field("asking", &self.asking.as_ref().map(|a| a.peer))
            .field("banned", &self.banned.len())
            .field("done", &self.done)
            .finish()
    }
}

impl MetadataFetch {
    /// A fetch of the dictionary of `info_hash`, introducing itself to peers
    /// as `peer_id`.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Self {
            info_hash,
            peer_id,
            peers: BTreeMap::new(),
            asking: None,
            banned: BTreeSet::new(),
            outputs: VecDeque::new(),
            done: false,
        }
    }

    /// The torrent whose dictionary is fetched.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// Whether [`FetchOutput::Done`] has been given.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Connections the fetch knows.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Peer ids banned for bad metadata.
    pub fn banned(&self) -> impl Iterator<Item = &PeerId> {
        self.banned.iter()
    }

    /// The next thing to carry out.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<FetchOutput> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        match &self.asking {
            Some(asking) => Some(asking.deadline),
            // A resting peer becomes askable again.
            None => self.peers.values().filter_map(|p| p.resting_until).min(),
        }
    }

    /// Time passed: a stalled peer is set aside and another asked.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.done {
            return;
        }
        if let Some(asking) = &self.asking
            && asking.deadline <= now
        {
            let peer = asking.peer;
            tracing::debug!(peer = peer.0, "metadata source stalled");
            self.rest(now, peer);
        }
        self.ask_next(now);
    }

    /// A new connection is open: the handshake goes out at once (after
    /// [`FetchOutput::Done`] too, for the download to take over).
    pub fn handle_peer_connected(&mut self, _now: Instant, peer: PeerKey) {
        self.forget(peer);
        let state = FetchPeer {
            wire: Wire::Handshaking(HandshakeDecoder::new(DecoderLimits::new())),
            greeting: Greeting::new(),
            metadata_id: None,
            size: None,
            resting_until: None,
        };
        self.peers.insert(peer, state);
        let handshake = Handshake {
            reserved: Reserved::NONE.with_fast(true).with_extended(true),
            info_hash: *self.info_hash.as_bytes(),
            peer_id: self.peer_id,
        };
        let mut data = BytesMut::new();
        handshake.encode(&mut data);
        self.send_raw(peer, data.freeze());
    }

    /// The connection closed (the remote, the network, a failed send).
    pub fn handle_peer_closed(&mut self, now: Instant, peer: PeerKey) {
        self.forget(peer);
        if !self.done {
            self.ask_next(now);
        }
    }

    /// Bytes arrived from a peer, split anywhere (after
    /// [`FetchOutput::Done`] too: what the download needs of them is kept).
    pub fn handle_peer_data(&mut self, now: Instant, peer: PeerKey, bytes: &[u8]) {
        if let Err(reason) = self.receive(now, peer, bytes) {
            self.close(peer, reason);
        }
        if !self.done {
            self.ask_next(now);
        }
    }

    fn receive(
        &mut self,
        now: Instant,
        key: PeerKey,
        bytes: &[u8],
    ) -> Result<(), FetchCloseReason> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let protocol = |e: DecodeError| FetchCloseReason::Protocol(e.into());
        match &mut peer.wire {
            Wire::Active { decoder, .. } => decoder.extend(bytes),
            Wire::Handshaking(decoder) => {
                decoder.extend(bytes);
                let Some((handshake, decoder)) = decoder.decode().map_err(protocol)? else {
                    return Ok(());
                };
                self.accept_handshake(key, &handshake)?;
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.wire = Wire::Active { decoder, handshake };
                }
            }
        }
        loop {
            let Some(FetchPeer {
                wire: Wire::Active { decoder, .. },
                ..
            }) = self.peers.get_mut(&key)
            else {
                return Ok(());
            };
            let Some(message) = decoder.decode().map_err(protocol)? else {
                return Ok(());
            };
            self.handle_message(now, key, message)?;
        }
    }

    fn accept_handshake(
        &mut self,
        key: PeerKey,
        handshake: &Handshake,
    ) -> Result<(), FetchCloseReason> {
        if handshake.info_hash != *self.info_hash.as_bytes() {
            return Err(FetchCloseReason::WrongTorrent);
        }
        if self.banned.contains(&handshake.peer_id) {
            return Err(FetchCloseReason::Banned);
        }
        let taken = self
            .peers
            .values()
            .any(|p| p.peer_id() == Some(handshake.peer_id));
        if handshake.peer_id == self.peer_id || taken {
            return Err(FetchCloseReason::Duplicate);
        }
        // Before the dictionary is in, a peer that cannot give it is of
        // no use; after, it is kept for the download like any other.
        let extended = handshake.reserved.supports_extended();
        if !extended && !self.done {
            return Err(FetchCloseReason::NoMetadata);
        }
        let mut messages = Vec::with_capacity(2);
        if handshake.reserved.supports_fast() {
            messages.push(Message::HaveNone);
        }
        let ours = ExtensionHandshake {
            extensions: BTreeMap::from([(METADATA_EXTENSION.to_owned(), LOCAL_METADATA_ID)]),
            client: Some(concat!("chunkswarm ", env!("CARGO_PKG_VERSION")).to_owned()),
            ..ExtensionHandshake::default()
        };
        if extended {
            messages.push(Message::Extended {
                id: EXTENSION_HANDSHAKE_ID,
                payload: ours.encode(),
            });
        }
        self.send(key, &messages);
        Ok(())
    }

    fn handle_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        message: Message,
    ) -> Result<(), FetchCloseReason> {
        let malformed = |e: ExtensionError| FetchCloseReason::Protocol(e.into());
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.greeting
                .hear(&message)
                .map_err(FetchCloseReason::Protocol)?;
        }
        match message {
            Message::Extended {
                id: EXTENSION_HANDSHAKE_ID,
                payload,
            } => {
                let theirs = ExtensionHandshake::decode(&payload).map_err(malformed)?;
                let id = theirs.id_of(METADATA_EXTENSION);
                let size = theirs
                    .metadata_size
                    .filter(|size| (1..=MAX_METADATA_LEN).contains(size));
                let done = self.done;
                let Some(peer) = self.peers.get_mut(&key) else {
                    return Ok(());
                };
                peer.greeting.extension_handshake = Some(payload);
                match (id, size) {
                    (Some(id), Some(size)) => {
                        peer.metadata_id = Some(id);
                        peer.size = Some(size);
                        Ok(())
                    }
                    // Kept for the download once the dictionary is in.
                    _ if done => Ok(()),
                    _ => Err(FetchCloseReason::NoMetadata),
                }
            }
            Message::Extended {
                id: LOCAL_METADATA_ID,
                payload,
            } => match MetadataMessage::decode(&payload).map_err(malformed)? {
                MetadataMessage::Request { piece } => {
                    // We have no metadata to give.
                    self.send_metadata(key, MetadataMessage::Reject { piece });
                    Ok(())
                }
                MetadataMessage::Reject { .. } => {
                    if self.asking.as_ref().is_some_and(|a| a.peer == key) {
                        self.rest(now, key);
                    }
                    Ok(())
                }
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                } => {
                    self.piece_received(now, key, piece, total_size, &data);
                    Ok(())
                }
            },
            // The rest is the peer's side of a download we do not run yet:
            // availability and choking (kept for it by the greeting),
            // requests (we hold nothing), blocks (we asked for none).
            _ => Ok(()),
        }
    }

    /// A metadata piece arrived; only the peer being asked is listened to.
    fn piece_received(&mut self, now: Instant, key: PeerKey, piece: u32, total: u64, data: &Bytes) {
        let Some(asking) = self.asking.as_mut().filter(|a| a.peer == key) else {
            return;
        };
        if !asking.outstanding.remove(&piece) {
            // Not asked for (or already in): ignored, and no progress.
            return;
        }
        if let Err(error) = asking.assembler.add(piece, total, data) {
            return self.bad_metadata(key, error);
        }
        asking.deadline = now + PIECE_TIMEOUT;
        if asking.assembler.missing().next().is_some() {
            self.request_more(key);
            return;
        }
        match asking.assembler.finish() {
            Ok(info) => {
                tracing::info!(info_hash = %self.info_hash, peer = key.0, "metadata received");
                self.done = true;
                self.asking = None;
                self.outputs.push_back(FetchOutput::Done(info));
            }
            Err(error @ MetadataError::BadInfo(_)) => {
                self.done = true;
                self.asking = None;
                self.outputs.push_back(FetchOutput::Failed(error));
            }
            Err(error) => self.bad_metadata(key, error),
        }
    }

    /// The peer being asked sent metadata that is not the torrent's.
    fn bad_metadata(&mut self, key: PeerKey, error: MetadataError) {
        let peer_id = self.peers.get(&key).and_then(FetchPeer::peer_id);
        if let Some(peer_id) = peer_id {
            tracing::warn!(peer = key.0, %error, "bad metadata from a peer; banned");
            self.banned.insert(peer_id);
            self.outputs
                .push_back(FetchOutput::BadMetadata { peer_id, error });
        }
        self.close(key, FetchCloseReason::Banned);
    }

    /// Sets the peer being asked aside for a while.
    fn rest(&mut self, now: Instant, key: PeerKey) {
        if self.asking.as_ref().is_some_and(|a| a.peer == key) {
            self.asking = None;
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.resting_until = Some(now + RETRY_AFTER);
        }
    }

    /// Asks the next usable peer for the dictionary, unless one is asked.
    fn ask_next(&mut self, now: Instant) {
        if self.done || self.asking.is_some() {
            return;
        }
        let next = self.peers.iter_mut().find_map(|(key, peer)| {
            if peer.resting_until.is_some_and(|until| until > now) {
                return None;
            }
            peer.metadata_id?;
            peer.resting_until = None;
            Some((*key, peer.size?))
        });
        let Some((key, size)) = next else {
            return;
        };
        // The size was checked when read, so this cannot fail; a peer whose
        // size is refused is closed all the same.
        let Ok(assembler) = MetadataAssembler::new(self.info_hash, size) else {
            return self.close(key, FetchCloseReason::NoMetadata);
        };
        tracing::debug!(peer = key.0, size, "asking a peer for the metadata");
        self.asking = Some(Asking {
            peer: key,
            assembler,
            outstanding: BTreeSet::new(),
            deadline: now + PIECE_TIMEOUT,
        });
        self.request_more(key);
    }

    /// Tops up the requests to the peer being asked.
    fn request_more(&mut self, key: PeerKey) {
        let Some(asking) = self.asking.as_mut().filter(|a| a.peer == key) else {
            return;
        };
        let room = PIPELINE.saturating_sub(asking.outstanding.len());
        let wanted: Vec<u32> = asking
            .assembler
            .missing()
            .filter(|piece| !asking.outstanding.contains(piece))
            .take(room)
            .collect();
        asking.outstanding.extend(&wanted);
        for piece in wanted {
            self.send_metadata(key, MetadataMessage::Request { piece });
        }
    }

    fn send_metadata(&mut self, key: PeerKey, message: MetadataMessage) {
        let Some(id) = self.peers.get(&key).and_then(|p| p.metadata_id) else {
            return;
        };
        let message = Message::Extended {
            id,
            payload: message.encode(),
        };
        self.send(key, &[message]);
    }

    fn send(&mut self, peer: PeerKey, messages: &[Message]) {
        let mut data = BytesMut::new();
        for message in messages {
            message.encode(&mut data);
        }
        self.send_raw(peer, data.freeze());
    }

    fn send_raw(&mut self, peer: PeerKey, data: Bytes) {
        self.outputs.push_back(FetchOutput::Send { peer, data });
    }

    /// Hands every connection over to the download, each as far as it
    /// has come, for [`Swarm::admit_peer`](crate::swarm::Swarm::admit_peer):
    /// what each peer said that the download needs, and the bytes after
    /// its last complete message. Every connection carries what the
    /// swarm's [handover contract](crate::swarm::PeerHandover) asks: our
    /// handshake, then `have none` (fast peers) and an extension handshake.
    /// Meant for after [`FetchOutput::Done`]; the peer id of the fetch must
    /// be the swarm's.
    pub fn into_handover(self) -> Vec<(PeerKey, PeerHandover)> {
        self.peers
            .into_iter()
            .map(|(key, peer)| (key, peer.into_handover()))
            .collect()
    }

    /// Closes a connection we give up on.
    fn close(&mut self, peer: PeerKey, reason: FetchCloseReason) {
        if self.peers.contains_key(&peer) {
            tracing::debug!(peer = peer.0, ?reason, "closing a metadata connection");
            self.forget(peer);
            self.outputs.push_back(FetchOutput::Close { peer, reason });
        }
    }

    /// Drops what is known of a connection.
    fn forget(&mut self, peer: PeerKey) {
        self.peers.remove(&peer);
        if self.asking.as_ref().is_some_and(|a| a.peer == peer) {
            self.asking = None;
        }
    }
}

mod greeting;
#[cfg(test)]
mod handover_props;
#[cfg(test)]
mod handover_tests;
#[cfg(test)]
mod tests;
