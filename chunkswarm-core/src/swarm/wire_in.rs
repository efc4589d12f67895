//! Decoding a peer's byte stream and acting on each message.

use web_time::Instant;

use super::peer::WireState;
use super::{CloseReason, Event, PeerKey, ProtocolViolation, Swarm};
use crate::piece_map::Bitfield;
use crate::wire::{BlockRequest, Handshake, Message};

/// Pieces of data for blocks we never asked for, tolerated before closing.
const MAX_UNSOLICITED_BLOCKS: u32 = 64;

impl Swarm {
    pub(super) fn receive(&mut self, now: Instant, key: PeerKey, bytes: &[u8]) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.last_received = now;
        match &mut peer.wire {
            WireState::Handshaking(decoder) => decoder.extend(bytes),
            WireState::Active { decoder, .. } => decoder.extend(bytes),
            WireState::Closed => return,
        }
        if matches!(peer.wire, WireState::Handshaking(_)) {
            let WireState::Handshaking(mut decoder) =
                std::mem::replace(&mut peer.wire, WireState::Closed)
            else {
                return;
            };
            match decoder.decode() {
                Ok(None) => peer.wire = WireState::Handshaking(decoder),
                Ok(Some((handshake, decoder))) => {
                    peer.wire = WireState::Active {
                        decoder,
                        first: true,
                    };
                    if !self.accept_handshake(now, key, handshake) {
                        return;
                    }
                }
                Err(e) => {
                    return self.drop_peer(now, key, ProtocolViolation::from(e).into(), true);
                }
            }
        }
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            let WireState::Active { decoder, first } = &mut peer.wire else {
                return;
            };
            let was_first = std::mem::replace(first, false);
            match decoder.decode() {
                Ok(Some(message)) => {
                    // Other messages may precede the bitfield (or have all /
                    // have none): WebTorrent sends its BEP 10 handshake first,
                    // and, opened from a magnet link, asks for the metadata
                    // and says it is interested before it can send a bitfield.
                    // It stays the first availability message, though.
                    let availability = matches!(
                        message,
                        Message::Bitfield(_)
                            | Message::HaveAll
                            | Message::HaveNone
                            | Message::Have { .. }
                    );
                    if was_first && !availability {
                        *first = true;
                    }
                    self.handle_message(now, key, message, was_first);
                }
                Ok(None) => {
                    *first = was_first;
                    break;
                }
                Err(e) => {
                    return self.drop_peer(now, key, ProtocolViolation::from(e).into(), true);
                }
            }
        }
        self.fill_requests(now, key);
    }

    /// Checks the peer's handshake and answers with what we have. Returns
    /// whether the connection survives.
    fn accept_handshake(&mut self, now: Instant, key: PeerKey, handshake: Handshake) -> bool {
        if let Some(reason) = self.refusal(&handshake) {
            self.drop_peer(now, key, reason, true);
            return false;
        }
        if !self.peers.contains_key(&key) {
            return false;
        }
        let fast = handshake.reserved.supports_fast();
        let announce = if fast && self.have.is_full() {
            Message::HaveAll
        } else if fast && self.have.is_clear() {
            Message::HaveNone
        } else {
            Message::Bitfield(self.have.to_bytes().into())
        };
        self.greet(now, key, &handshake, &[announce]);
        true
    }

    /// Takes in an accepted peer's handshake and greets it: `availability`
    /// (what we hold), then our extension handshake if it speaks BEP 10.
    pub(super) fn greet(
        &mut self,
        now: Instant,
        key: PeerKey,
        handshake: &Handshake,
        availability: &[Message],
    ) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.peer_id = Some(handshake.peer_id);
            peer.fast = handshake.reserved.supports_fast();
        }
        self.send(now, key, availability);
        if handshake.reserved.supports_extended() {
            self.send_extension_handshake(now, key);
        }
        self.emit(Event::PeerConnected {
            peer: key,
            peer_id: handshake.peer_id,
        });
        self.upload.peer_joined(now, key);
    }

    /// Why a connection whose peer sent `handshake` is refused, if it is.
    pub(super) fn refusal(&self, handshake: &Handshake) -> Option<CloseReason> {
        if handshake.info_hash != *self.info.info_hash().as_bytes() {
            Some(CloseReason::WrongTorrent)
        } else if handshake.peer_id == self.config.peer_id
            || self
                .peers
                .values()
                .any(|p| p.peer_id == Some(handshake.peer_id))
        {
            Some(CloseReason::Duplicate)
        } else if self.banned_ids.contains(&handshake.peer_id) {
            Some(CloseReason::Banned)
        } else if self.peers.values().filter(|p| p.is_active()).count() > self.config.max_peers {
            Some(CloseReason::TooManyPeers)
        } else {
            None
        }
    }

    /// Acts on one message; `first` while no availability message came.
    pub(super) fn handle_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        message: Message,
        first: bool,
    ) {
        let fast = self.peers.get(&key).is_some_and(|p| p.fast);
        match message {
            Message::KeepAlive | Message::Port(_) => {}
            Message::Extended { id, payload } => self.extension_message(now, key, id, &payload),
            Message::Suggest { .. } | Message::AllowedFast { .. } if fast => {}
            Message::Bitfield(bytes) if first => {
                match Bitfield::from_bytes(&bytes, self.layout.piece_count()) {
                    Ok(pieces) => self.peer_has_bitfield(now, key, pieces),
                    Err(e) => self.drop_peer(now, key, ProtocolViolation::from(e).into(), true),
                }
            }
            Message::HaveAll if first && fast => {
                self.peer_has_bitfield(now, key, Bitfield::full(self.layout.piece_count()));
            }
            Message::HaveNone if first && fast => {}
            Message::Have { piece } => match self.layout.piece(piece) {
                Some(piece) => self.peer_has_piece(now, key, piece),
                None => {
                    let violation = ProtocolViolation::HaveOutOfRange { piece };
                    self.drop_peer(now, key, violation.into(), true);
                }
            },
            Message::Choke => self.peer_choked(key),
            Message::Unchoke => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.peer_choking = false;
                    peer.progress_at = now;
                }
            }
            Message::Interested | Message::NotInterested => {
                let interested = message == Message::Interested;
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.peer_interested = interested;
                }
                self.interest_changed(now, key);
            }
            Message::Request(request) => self.peer_requested(now, key, request),
            Message::Cancel(request) => self.peer_cancelled(key, request),
            Message::RejectRequest(request) if fast => self.request_rejected(now, key, request),
            Message::Piece {
                index,
                begin,
                block,
            } => {
                let block_ref = self.layout.block(index, begin, block.len() as u32);
                match block_ref {
                    Some(b) => self.block_received(now, key, b, &block),
                    None => self.useless_block(now, key, block.len(), false),
                }
            }
            other => {
                // Keep-alive, the one message without an id, is matched above.
                if let Some(id) = other.id() {
                    let violation = ProtocolViolation::UnexpectedMessage(id);
                    self.drop_peer(now, key, violation.into(), true);
                }
            }
        }
    }

    /// A block we cannot use: late if we had asked for it (it crossed our
    /// cancel, or another source was faster), else unsolicited.
    pub(super) fn useless_block(&mut self, now: Instant, key: PeerKey, len: usize, asked: bool) {
        self.stats.wasted_bytes += len as u64;
        if !asked {
            self.unsolicited_block(now, key);
        }
    }

    fn unsolicited_block(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.unsolicited_blocks += 1;
        if peer.unsolicited_blocks > MAX_UNSOLICITED_BLOCKS {
            let reason = ProtocolViolation::TooManyUnrequestedBlocks.into();
            self.drop_peer(now, key, reason, true);
        }
    }

    fn peer_has_bitfield(&mut self, now: Instant, key: PeerKey, pieces: Bitfield) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if pieces.is_full() {
            peer.is_seed = true;
            self.availability.add_seed();
        } else {
            for piece in pieces.iter_ones() {
                self.availability.add_have(piece);
            }
            for piece in pieces.iter_ones() {
                self.picker
                    .availability_changed(piece, self.partial_count(piece));
            }
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.has = pieces;
            }
        }
        self.update_interest(now, key);
        self.disconnect_if_both_seeds(now, key);
    }

    fn peer_has_piece(&mut self, now: Instant, key: PeerKey, piece: crate::layout::PieceIndex) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.is_seed || !peer.has.insert(piece) {
            return;
        }
        if peer.has.is_full() {
            let pieces = std::mem::replace(&mut peer.has, Bitfield::new(0));
            peer.is_seed = true;
            // Its earlier pieces move from the per-piece counts to the seed count.
            pieces
                .iter_ones()
                .filter(|p| *p != piece)
                .for_each(|p| self.availability.remove_have(p));
            self.availability.add_seed();
            for p in pieces.iter_ones() {
                self.picker.availability_changed(p, self.partial_count(p));
            }
            self.disconnect_if_both_seeds(now, key);
        } else {
            self.availability.add_have(piece);
            self.picker
                .availability_changed(piece, self.partial_count(piece));
        }
        self.update_interest(now, key);
    }

    /// Sends `interested` or `not interested` when that changes.
    pub(super) fn update_interest(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let wanted = !self.completed
            && (if peer.is_seed {
                true
            } else {
                self.have.wants_any_from(&peer.has)
            });
        if wanted != peer.am_interested {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.am_interested = wanted;
            }
            let message = if wanted {
                Message::Interested
            } else {
                Message::NotInterested
            };
            self.send(now, key, &[message]);
        }
    }

    fn disconnect_if_both_seeds(&mut self, now: Instant, key: PeerKey) {
        if self.completed && self.peers.get(&key).is_some_and(|p| p.is_seed) {
            self.drop_peer(now, key, CloseReason::BothSeeds, true);
        }
    }

    fn peer_choked(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.peer_choking = true;
        // Without the fast extension a choke silently drops our requests;
        // with it, the peer rejects each one explicitly.
        if !peer.fast {
            let dropped = std::mem::take(&mut peer.outstanding);
            for outstanding in dropped {
                self.release_block(key, outstanding.block);
            }
        }
    }

    fn request_rejected(&mut self, now: Instant, key: PeerKey, request: BlockRequest) {
        let Some(block) = self
            .layout
            .block(request.index, request.begin, request.length)
        else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let before = peer.outstanding.len();
        peer.outstanding.retain(|o| o.block != block);
        if peer.outstanding.len() != before {
            self.release_block(key, block);
            if !self.peers.get(&key).is_some_and(|p| p.peer_choking) {
                self.note_attempt_failed(block.piece());
            }
            self.fill_all_requests(now);
        }
    }
}
