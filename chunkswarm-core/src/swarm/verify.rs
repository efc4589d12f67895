//! Verification of completed pieces, and blame when one fails.
//!
//! A piece is hashed before it is marked had, announced, stored or served. On
//! a failure, a peer that alone supplied the piece is banned at once. When
//! several sources shared it, each peer's blocks are remembered by hash and
//! the peers go on parole (they get only pieces nobody else touches, so their
//! next failure is unambiguous); when the piece later verifies, any
//! remembered block that differs from the good one convicts its sender
//! (libtorrent's smart-ban). Honest peers are never banned: every ban rests
//! on data proven wrong.

use std::collections::BTreeSet;

use bytes::Bytes;
use sha1::{Digest, Sha1};
use web_time::Instant;

use super::download::BlockSlot;
use super::{BanReason, CloseReason, Event, Output, PeerKey, PieceState, Source, Swarm};
use crate::layout::{BLOCK_SIZE, PieceIndex};
use crate::wire::Message;

/// A block from a failed piece, kept to compare with the good one.
#[derive(Debug, Clone)]
pub(super) struct Suspect {
    block_index: u32,
    peer: PeerKey,
    peer_id: Option<[u8; 20]>,
    hash: [u8; 20],
}

impl Swarm {
    /// All blocks of a piece are in: verify it.
    pub(super) fn piece_complete(&mut self, now: Instant, piece: PieceIndex) {
        let Some(partial) = self.partials.remove(&piece) else {
            return;
        };
        if let Some(id) = partial.http {
            self.cancel_http(id);
        }
        let sources: BTreeSet<Source> = partial
            .blocks
            .iter()
            .filter_map(|slot| match slot {
                BlockSlot::Received(source) => Some(*source),
                _ => None,
            })
            .collect();
        if self.info.verify_piece(piece, &partial.data) {
            let mut http_bytes = 0u64;
            for (index, slot) in partial.blocks.iter().enumerate() {
                if *slot == BlockSlot::Received(Source::Http) {
                    http_bytes += u64::from(block_len(&partial.data, index));
                }
            }
            let data = Bytes::from(partial.data);
            self.convict_suspects(now, piece, &data);
            if let [Source::Peer(only)] = sources.iter().copied().collect::<Vec<_>>()[..] {
                if let Some(peer) = self.peers.get_mut(&only) {
                    peer.on_parole = false;
                }
            }
            let main = if http_bytes * 2 > data.len() as u64 {
                Source::Http
            } else {
                sources
                    .iter()
                    .copied()
                    .find(|s| matches!(s, Source::Peer(_)))
                    .unwrap_or(Source::Http)
            };
            self.piece_verified(now, piece, data, http_bytes, main);
        } else {
            self.piece_failed(now, piece, &partial.data, &partial.blocks, sources);
        }
    }

    fn piece_verified(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: Bytes,
        http_bytes: u64,
        main: Source,
    ) {
        let len = data.len() as u64;
        if !self.have.insert(piece) {
            return;
        }
        self.picker.set_wanted(piece, false);
        self.attempts.remove(&piece);
        self.stats.verified_bytes += len;
        self.stats.pieces_verified += 1;
        self.stats.http_bytes += http_bytes;
        self.stats.p2p_bytes += len - http_bytes;
        self.outputs.push_back(Output::StorePiece {
            piece,
            data: data.clone(),
        });
        self.upload.cache_piece(piece, data);
        self.emit(Event::Piece {
            piece,
            state: PieceState::Verified(main),
        });
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_active())
            .map(|(k, _)| *k)
            .collect();
        for key in &keys {
            self.send(now, *key, &[Message::Have { piece: piece.get() }]);
        }
        if self.have.is_full() {
            self.completed = true;
            self.emit(Event::Completed);
            for id in self.http.in_flight_ids() {
                self.cancel_http(id);
            }
            let seeds: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| p.is_seed)
                .map(|(k, _)| *k)
                .collect();
            for key in seeds {
                self.drop_peer(now, key, CloseReason::BothSeeds, true);
            }
        }
        for key in keys {
            self.update_interest(now, key);
        }
    }

    fn piece_failed(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: &[u8],
        blocks: &[BlockSlot],
        sources: BTreeSet<Source>,
    ) {
        self.stats.hash_failures += 1;
        self.stats.wasted_bytes += data.len() as u64;
        self.note_attempt_failed(piece);
        self.emit(Event::HashFailed {
            piece,
            sources: sources.iter().copied().collect(),
        });
        self.emit(Event::Piece {
            piece,
            state: PieceState::Missing,
        });
        let peers: Vec<PeerKey> = sources
            .iter()
            .filter_map(|s| match s {
                Source::Peer(k) => Some(*k),
                Source::Http => None,
            })
            .collect();
        if sources.contains(&Source::Http) {
            self.http_failed(now);
        }
        if let ([only], false) = (&peers[..], sources.contains(&Source::Http)) {
            let peer_id = self.peers.get(only).and_then(|p| p.peer_id);
            self.ban(now, *only, peer_id, BanReason::SoleSourceOfBadPiece);
            return;
        }
        let suspects = self.suspects.entry(piece).or_default();
        for (index, slot) in blocks.iter().enumerate() {
            if let BlockSlot::Received(Source::Peer(key)) = slot {
                let start = index * BLOCK_SIZE as usize;
                let end = start + block_len(data, index) as usize;
                suspects.push(Suspect {
                    block_index: index as u32,
                    peer: *key,
                    peer_id: self.peers.get(key).and_then(|p| p.peer_id),
                    hash: Sha1::digest(&data[start..end]).into(),
                });
            }
        }
        for key in peers {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.on_parole = true;
            }
        }
        self.fill_all_requests(now);
    }

    /// The piece verified: anyone who earlier sent a different block for it lied.
    fn convict_suspects(&mut self, now: Instant, piece: PieceIndex, good: &[u8]) {
        let Some(suspects) = self.suspects.remove(&piece) else {
            return;
        };
        for suspect in suspects {
            let start = suspect.block_index as usize * BLOCK_SIZE as usize;
            let end = start + block_len(good, suspect.block_index as usize) as usize;
            let Some(block) = good.get(start..end) else {
                continue;
            };
            if <[u8; 20]>::from(Sha1::digest(block)) != suspect.hash {
                self.ban(now, suspect.peer, suspect.peer_id, BanReason::BadBlock);
            }
        }
    }

    fn ban(&mut self, now: Instant, key: PeerKey, peer_id: Option<[u8; 20]>, reason: BanReason) {
        let Some(peer_id) = peer_id else {
            return;
        };
        if !self.banned_ids.insert(peer_id) {
            return;
        }
        self.stats.banned += 1;
        self.emit(Event::PeerBanned {
            peer: key,
            peer_id,
            reason,
        });
        if self.peers.get(&key).and_then(|p| p.peer_id) == Some(peer_id) {
            self.drop_peer(now, key, CloseReason::Banned, true);
        }
    }
}

/// Length of the `index`-th block of a piece of `data.len()` bytes.
fn block_len(data: &[u8], index: usize) -> u32 {
    let start = index * BLOCK_SIZE as usize;
    data.len().saturating_sub(start).min(BLOCK_SIZE as usize) as u32
}
