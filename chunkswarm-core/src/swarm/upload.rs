//! Serving peers: choking (tit-for-tat slots plus an optimistic unchoke),
//! request queues in playback order (see `serve_uploads`), a piece cache,
//! and the upload rate limit.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use web_time::Instant;

use super::config::SwarmConfig;
use super::{Output, PeerKey, ProtocolViolation, Swarm};
use crate::layout::{Block, PieceIndex};
use crate::rate::TokenBucket;
use crate::wire::{BlockRequest, Message};

use super::download::request_of;

/// Blocks served to one peer per pass before others get a turn; the adapter
/// reports a full channel between passes.
const BURST_BLOCKS: usize = 16;

/// Upload-side state that is not per peer.
#[derive(Debug)]
pub(super) struct UploadState {
    cache: VecDeque<(PieceIndex, Bytes)>,
    cache_len: usize,
    reading: BTreeSet<PieceIndex>,
    bucket: Option<TokenBucket>,
    next_rechoke: Instant,
    next_optimistic: Instant,
    optimistic: Option<PeerKey>,
    joined: BTreeMap<PeerKey, Instant>,
    /// More can be served right away: ask to be called again now.
    more_at: Option<Instant>,
}

impl UploadState {
    pub(super) fn new(now: Instant, config: &SwarmConfig) -> Self {
        let mut state = Self {
            cache: VecDeque::new(),
            cache_len: config.piece_cache.max(1),
            reading: BTreeSet::new(),
            bucket: None,
            next_rechoke: now,
            next_optimistic: now,
            optimistic: None,
            joined: BTreeMap::new(),
            more_at: None,
        };
        state.set_limit(config.upload_rate_limit);
        state
    }

    pub(super) fn set_limit(&mut self, limit: Option<u64>) {
        // A quarter second of burst keeps sending smooth at any rate.
        self.bucket = limit.map(|rate| TokenBucket::new(rate, (rate / 4).max(16 * 1024)));
    }

    pub(super) fn ready_at(&self) -> Option<Instant> {
        self.more_at
    }

    pub(super) fn cache_piece(&mut self, piece: PieceIndex, data: Bytes) {
        self.cache.retain(|(p, _)| *p != piece);
        if self.cache.len() >= self.cache_len {
            self.cache.pop_front();
        }
        self.cache.push_back((piece, data));
    }

    fn cached(&mut self, piece: PieceIndex) -> Option<Bytes> {
        let i = self.cache.iter().position(|(p, _)| *p == piece)?;
        let entry = self.cache.remove(i)?;
        let data = entry.1.clone();
        self.cache.push_back(entry);
        Some(data)
    }

    pub(super) fn peer_joined(&mut self, now: Instant, key: PeerKey) {
        self.joined.insert(key, now);
    }

    pub(super) fn forget(&mut self, key: PeerKey) {
        self.joined.remove(&key);
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
    }
}

impl Swarm {
    pub(super) fn peer_requested(&mut self, now: Instant, key: PeerKey, request: BlockRequest) {
        let block = self
            .layout
            .block(request.index, request.begin, request.length);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let servable = block.filter(|b| self.have.contains(b.piece()) && !peer.am_choking);
        match servable {
            Some(block) if peer.incoming.contains(&block) => {}
            Some(block) if peer.incoming.len() < self.config.max_incoming_requests => {
                peer.incoming.push_back(block);
            }
            Some(_) => {
                let reason = ProtocolViolation::TooManyRequests.into();
                self.drop_peer(now, key, reason, true);
            }
            None if peer.fast => self.send(now, key, &[Message::RejectRequest(request)]),
            None => {}
        }
    }

    pub(super) fn peer_cancelled(&mut self, key: PeerKey, request: BlockRequest) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.incoming.retain(|b| request_of(*b) != request);
        }
    }

    pub(super) fn piece_read(&mut self, now: Instant, piece: PieceIndex, data: Option<Bytes>) {
        self.upload.reading.remove(&piece);
        match data {
            Some(data) if data.len() == self.layout.piece_len(piece) as usize => {
                self.upload.cache_piece(piece, data);
            }
            _ => self.piece_lost(now, piece),
        }
    }

    /// The store lost a verified piece: fetch it again, and refuse its requests.
    fn piece_lost(&mut self, now: Instant, piece: PieceIndex) {
        if !self.have.remove(piece) {
            return;
        }
        let len = u64::from(self.layout.piece_len(piece));
        self.stats.verified_bytes -= len;
        self.stats.pieces_verified -= 1;
        self.completed = false;
        self.picker.set_wanted(piece, true);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let rejected: Vec<Block> = match self.peers.get_mut(&key) {
                Some(peer) => {
                    let gone: Vec<Block> = peer
                        .incoming
                        .iter()
                        .filter(|b| b.piece() == piece)
                        .copied()
                        .collect();
                    peer.incoming.retain(|b| b.piece() != piece);
                    if peer.fast { gone } else { Vec::new() }
                }
                None => Vec::new(),
            };
            let messages: Vec<Message> = rejected
                .into_iter()
                .map(|b| Message::RejectRequest(request_of(b)))
                .collect();
            self.send(now, key, &messages);
            self.update_interest(now, key);
        }
    }

    /// Sends queued blocks, within the rate limit and a burst per peer per
    /// pass. Peers whose playback needs a queued block within
    /// `serve_first_within` go first, nearest deadline first, and while any
    /// of them waits (even on a full channel) nobody else is served, so the
    /// upload is not shared out among requests that can wait. Otherwise,
    /// round-robin over unchoked, writable peers. While we play, without an
    /// upload rate limit, only `upload_streams` of the peers that play are
    /// served: the first by deadline, or else those playing furthest ahead.
    pub(super) fn serve_uploads(&mut self, now: Instant) {
        self.upload.more_at = None;
        let waiting: Vec<(PeerKey, Option<Instant>)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_active() && !p.am_choking && !p.incoming.is_empty())
            .map(|(k, _)| (*k, self.nearest_deadline(*k)))
            .collect();
        let first_within = now + self.config.streaming.serve_first_within;
        let mut urgent: Vec<(PeerKey, Instant)> = waiting
            .iter()
            .filter_map(|(k, d)| d.filter(|d| *d < first_within).map(|d| (*k, d)))
            .collect();
        let mut keys: Vec<PeerKey> = if urgent.is_empty() {
            waiting.iter().map(|(k, _)| *k).collect()
        } else {
            urgent.sort_by_key(|(k, d)| (*d, *k));
            urgent.iter().map(|(k, _)| *k).collect()
        };
        // Under a rate limit nothing waits in send buffers: our order decides.
        let limited = self.upload.bucket.is_some();
        if self.playback.is_some() && self.config.streaming.upload_streams > 0 && !limited {
            self.limit_streams(now, &mut keys, urgent.is_empty());
        }
        for key in keys {
            if self.peers.get(&key).is_none_or(|p| p.blocked) {
                continue;
            }
            for _ in 0..BURST_BLOCKS {
                match self.serve_one(now, key) {
                    Served::Sent => {}
                    Served::Waiting => break,
                    Served::RateLimited(at) => {
                        self.upload.more_at = Some(at);
                        return;
                    }
                }
            }
            let more = self
                .peers
                .get(&key)
                .is_some_and(|p| !p.blocked && !p.incoming.is_empty());
            if more && self.upload.more_at.is_none() {
                self.upload.more_at = Some(now);
            }
        }
    }

    /// Keeps the first `upload_streams` of the peers that play, after
    /// putting those playing furthest ahead first unless `keys` is already
    /// in deadline order; peers that do not play stay, behind them.
    fn limit_streams(&self, now: Instant, keys: &mut Vec<PeerKey>, by_position: bool) {
        let mut placed: Vec<(PeerKey, Option<u64>)> = keys
            .iter()
            .map(|key| (*key, self.neighbour_position(now, *key)))
            .collect();
        if by_position {
            // Stable: peers that do not play keep their order, last.
            placed.sort_by_key(|(_, position)| Reverse(*position));
        }
        let mut streams = 0;
        placed.retain(|(_, position)| {
            streams += usize::from(position.is_some());
            position.is_none() || streams <= self.config.streaming.upload_streams
        });
        *keys = placed.into_iter().map(|(key, _)| key).collect();
    }

    /// The nearest playback deadline among the blocks `key` asked of us.
    fn nearest_deadline(&self, key: PeerKey) -> Option<Instant> {
        let peer = self.peers.get(&key)?;
        let heard = peer.playhead?;
        // Deadlines grow with the offset: find the first offset, then its
        // time (queues of hundreds of blocks are scanned on every pass).
        let first = peer
            .incoming
            .iter()
            .map(|b| self.layout.piece_offset(b.piece()))
            .filter(|offset| heard.plays(*offset))
            .min()?;
        heard.reaches(first)
    }

    fn serve_one(&mut self, now: Instant, key: PeerKey) -> Served {
        let Some(block) = self
            .peers
            .get(&key)
            .and_then(|p| p.incoming.front().copied())
        else {
            return Served::Waiting;
        };
        let Some(data) = self.upload.cached(block.piece()) else {
            if self.upload.reading.insert(block.piece()) {
                self.outputs.push_back(Output::ReadPiece {
                    piece: block.piece(),
                });
            }
            return Served::Waiting;
        };
        let len = u64::from(block.length());
        if let Some(bucket) = &mut self.upload.bucket {
            if !bucket.try_take(now, len) {
                return Served::RateLimited(bucket.ready_at(now, len));
            }
        }
        let begin = block.begin() as usize;
        let payload = data.slice(begin..begin + block.length() as usize);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.incoming.pop_front();
            peer.upload.record(now, len);
            peer.uploaded += len;
        }
        self.stats.uploaded_bytes += len;
        self.upload_rate.record(now, len);
        let message = Message::Piece {
            index: block.piece().get(),
            begin: block.begin(),
            block: payload,
        };
        self.send(now, key, &[message]);
        Served::Sent
    }

    /// A peer's interest changed: give it a free slot at once, or free its slot.
    pub(super) fn interest_changed(&mut self, now: Instant, key: PeerKey) {
        let interested = self.peers.get(&key).is_some_and(|p| p.peer_interested);
        let unchoked = self
            .peers
            .values()
            .filter(|p| !p.am_choking && p.peer_interested)
            .count();
        if interested && unchoked <= self.config.upload_slots {
            self.set_choke(now, key, false);
        } else if !interested {
            self.upload.next_rechoke = now;
        }
    }

    /// Every rechoke interval: unchoke the interested peers that give us the
    /// most (or, once we seed, take the most), plus one optimistic unchoke.
    pub(super) fn maybe_rechoke(&mut self, now: Instant) {
        if now < self.upload.next_rechoke {
            return;
        }
        self.upload.next_rechoke = now + self.config.rechoke_interval;
        let mut candidates: Vec<(PeerKey, f64)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_active() && p.peer_interested)
            .map(|(k, p)| {
                let rate = if self.completed {
                    p.upload.rate(now)
                } else {
                    p.download.rate(now)
                };
                (*k, rate)
            })
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut unchoke: BTreeSet<PeerKey> = candidates
            .iter()
            .take(self.config.upload_slots)
            .map(|(k, _)| *k)
            .collect();
        if now >= self.upload.next_optimistic || self.upload.optimistic.is_none() {
            self.upload.next_optimistic = now + self.config.optimistic_unchoke_interval;
            let choked: Vec<PeerKey> = candidates
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| !unchoke.contains(k))
                .collect();
            // Newcomers (under a minute) get three lottery tickets.
            let tickets: Vec<PeerKey> = choked
                .iter()
                .flat_map(|k| {
                    let new = self
                        .upload
                        .joined
                        .get(k)
                        .is_some_and(|t| now.saturating_duration_since(*t).as_secs() < 60);
                    std::iter::repeat_n(*k, if new { 3 } else { 1 })
                })
                .collect();
            self.upload.optimistic = (!tickets.is_empty())
                .then(|| tickets[self.rng.below(tickets.len() as u64) as usize]);
        }
        if let Some(optimistic) = self.upload.optimistic {
            unchoke.insert(optimistic);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.set_choke(now, key, !unchoke.contains(&key));
        }
    }

    fn set_choke(&mut self, now: Instant, key: PeerKey, choke: bool) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.is_active() || peer.am_choking == choke {
            return;
        }
        peer.am_choking = choke;
        if !choke {
            return self.send(now, key, &[Message::Unchoke]);
        }
        let dropped: Vec<Block> = peer.incoming.drain(..).collect();
        let mut messages = vec![Message::Choke];
        if peer.fast {
            messages.extend(
                dropped
                    .into_iter()
                    .map(|b| Message::RejectRequest(request_of(b))),
            );
        }
        self.send(now, key, &messages);
    }
}

enum Served {
    Sent,
    /// Nothing to send now (empty queue, or waiting for a store read).
    Waiting,
    /// The rate limit allows more at this time.
    RateLimited(Instant),
}
