//! Requesting blocks: started pieces first, then the picker's choice, then
//! endgame duplicates; timeouts and releases put blocks back in play.

use std::collections::BTreeSet;
use std::ops::Range;

use web_time::Instant;

use super::config::WindowDuplicates;
use super::peer::Outstanding;
use super::{CloseReason, Event, HttpRequestId, PeerKey, PieceState, Source, Swarm};
use crate::layout::{BLOCK_SIZE, Block, PieceIndex};
use crate::pick::PeerView;
use crate::wire::{BlockRequest, Message};

/// Consecutive timeouts after which a peer is disconnected.
const MAX_PEER_FAILURES: u32 = 6;

/// One block of a piece being fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockSlot {
    Missing,
    /// Asked of `by`; in endgame also of `also`.
    Requested {
        by: PeerKey,
        also: Option<PeerKey>,
    },
    Received(Source),
}

/// A piece being assembled.
#[derive(Debug)]
pub(super) struct PartialPiece {
    pub(super) data: Vec<u8>,
    pub(super) blocks: Vec<BlockSlot>,
    pub(super) received: u32,
    /// Only this peer may fill it (it is on parole).
    pub(super) exclusive: Option<PeerKey>,
    /// Its missing blocks are being fetched over HTTP; peers keep off it
    /// unless they race a playback rescue (`Swarm::rescue_race_blocks`).
    pub(super) http: Option<HttpRequestId>,
}

impl PartialPiece {
    pub(super) fn new(len: u32, blocks: u32) -> Self {
        Self {
            data: vec![0; len as usize],
            blocks: vec![BlockSlot::Missing; blocks as usize],
            received: 0,
            exclusive: None,
            http: None,
        }
    }

    /// No block received or requested, and no HTTP fetch.
    fn is_untouched(&self) -> bool {
        self.http.is_none() && self.blocks.iter().all(|b| *b == BlockSlot::Missing)
    }

    /// Nothing is fetching it: no block requested, no HTTP fetch. Its
    /// peers may have left halfway.
    pub(super) fn is_idle(&self) -> bool {
        self.http.is_none()
            && !self
                .blocks
                .iter()
                .any(|b| matches!(b, BlockSlot::Requested { .. }))
    }

    /// How many more blocks `peer` may take of this piece: `race` more than
    /// it has asked for already while HTTP fetches it.
    fn open_to(&self, peer: PeerKey, on_parole: bool, race: u32) -> usize {
        let allowed = match self.exclusive {
            Some(owner) => owner == peer,
            None => !on_parole || self.is_untouched(),
        };
        if !allowed {
            return 0;
        }
        if self.http.is_none() {
            return usize::MAX;
        }
        let asked = self
            .blocks
            .iter()
            .filter(|b| matches!(b, BlockSlot::Requested { by, .. } if *by == peer))
            .count();
        (race as usize).saturating_sub(asked)
    }
}

impl Swarm {
    /// Blocks to keep requested from a peer: its rate times the queue time
    /// (plus a round trip), within the configured bounds.
    fn queue_depth(&self, now: Instant, key: PeerKey) -> usize {
        let Some(peer) = self.peers.get(&key) else {
            return 0;
        };
        let horizon = self.config.request_queue_time + peer.rtt.unwrap_or_default();
        let blocks = peer.download.rate(now) * horizon.as_secs_f64() / f64::from(BLOCK_SIZE);
        let depth = (blocks.ceil() as u32).clamp(
            self.config.min_request_queue,
            self.config.max_request_queue.max(1),
        );
        depth as usize
    }

    pub(super) fn fill_all_requests(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        if keys.is_empty() {
            return;
        }
        // Rotate who goes first so no peer is always served last.
        let start = self.rng.below(keys.len() as u64) as usize;
        for key in keys[start..].iter().chain(&keys[..start]) {
            self.fill_requests(now, *key);
        }
    }

    /// While HTTP rescues a piece under deadline, withdraws peer requests
    /// for pieces after it: their blocks would share the link with the
    /// rescue. They are asked again once the rescue is done.
    pub(super) fn withdraw_past_rescue(&mut self, now: Instant) {
        let Some(focus) = self.focus(now) else {
            return;
        };
        let Some(rescued) = self.http.rescuing() else {
            return;
        };
        if focus.end > rescued.get() + 1 {
            return;
        }
        let past: Vec<(PeerKey, Block)> = self
            .peers
            .iter()
            .flat_map(|(key, peer)| {
                peer.outstanding
                    .iter()
                    .filter(|o| o.block.piece().get() > rescued.get())
                    .map(|o| (*key, o.block))
            })
            .collect();
        for (key, block) in past {
            self.cancel_request(now, key, block);
            self.release_block(key, block);
        }
    }

    /// Tops up the peer's request queue.
    pub(super) fn fill_requests(&mut self, now: Instant, key: PeerKey) {
        if self.paused || self.completed {
            return;
        }
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if !peer.can_request(now) {
            return;
        }
        let depth = self.queue_depth(now, key);
        let mut room = depth.saturating_sub(peer.outstanding.len());
        if room == 0 {
            return;
        }
        let focus = self.focus(now);
        let reach = self.peer_reach(now);
        let mut chosen: Vec<Block> = Vec::new();
        self.continue_partials(now, key, focus.clone(), &mut room, &mut chosen);
        while room > 0 {
            let Some(piece) = self.pick_new_piece(key, reach, focus.clone()) else {
                break;
            };
            self.start_piece(key, piece);
            self.continue_partial(now, key, piece, &mut room, &mut chosen);
        }
        if room > 0 && chosen.is_empty() && !self.has_missing_blocks() {
            self.endgame(now, key, &mut room, &mut chosen);
        }
        self.send_requests(now, key, &chosen);
    }

    /// Continues started pieces: those in `focus` only if given, else the
    /// playback window's first, in playback order, then the rest.
    fn continue_partials(
        &mut self,
        now: Instant,
        key: PeerKey,
        focus: Option<Range<u32>>,
        room: &mut usize,
        chosen: &mut Vec<Block>,
    ) {
        let window = focus.clone().unwrap_or_else(|| self.window());
        let in_window = |p: &PieceIndex| window.contains(&p.get());
        let mut pieces: Vec<PieceIndex> = self.partials.keys().copied().filter(in_window).collect();
        if focus.is_none() {
            pieces.extend(self.partials.keys().copied().filter(|p| !in_window(p)));
        }
        for piece in pieces {
            if *room == 0 {
                return;
            }
            self.continue_partial(now, key, piece, room, chosen);
        }
    }

    /// Requests missing blocks of one started piece, if the peer may take them.
    fn continue_partial(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: PieceIndex,
        room: &mut usize,
        chosen: &mut Vec<Block>,
    ) {
        let race = match self.partials.get(&piece) {
            Some(partial) if partial.http.is_some() => self.rescue_race_blocks(now, key, piece),
            _ => 0,
        };
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let Some(partial) = self.partials.get_mut(&piece) else {
            return;
        };
        if !peer.has_piece(piece) {
            return;
        }
        let mut open = partial.open_to(key, peer.on_parole, race);
        if open == 0 {
            return;
        }
        if peer.on_parole {
            partial.exclusive = Some(key);
        }
        for (index, slot) in partial.blocks.iter_mut().enumerate() {
            if *room == 0 || open == 0 {
                return;
            }
            if *slot == BlockSlot::Missing {
                if let Some(block) = self.layout.block_at(piece, index as u32) {
                    *slot = BlockSlot::Requested {
                        by: key,
                        also: None,
                    };
                    chosen.push(block);
                    *room -= 1;
                    open -= 1;
                }
            }
        }
    }

    /// A piece to start with this peer: before `reach`, within `focus` if given.
    fn pick_new_piece(
        &mut self,
        key: PeerKey,
        reach: u32,
        focus: Option<Range<u32>>,
    ) -> Option<PieceIndex> {
        let peer = self.peers.get(&key)?;
        let view = PeerView {
            has: &peer.has,
            is_seed: peer.is_seed,
        };
        let (partials, have) = (&self.partials, &self.have);
        let focused =
            |p: PieceIndex| p.get() < reach && focus.as_ref().is_none_or(|f| f.contains(&p.get()));
        self.picker.pick(view, &mut |p| {
            !have.contains(p) && !partials.contains_key(&p) && focused(p)
        })
    }

    pub(super) fn start_piece(&mut self, key: PeerKey, piece: PieceIndex) {
        let partial =
            PartialPiece::new(self.layout.piece_len(piece), self.layout.block_count(piece));
        self.partials.insert(piece, partial);
        self.emit(Event::Piece {
            piece,
            state: PieceState::Requested(Source::Peer(key)),
        });
    }

    fn has_missing_blocks(&self) -> bool {
        self.partials
            .values()
            .any(|p| p.http.is_none() && p.blocks.contains(&BlockSlot::Missing))
    }

    /// Every wanted block is requested: ask this peer too for blocks others
    /// are fetching, first come first kept; the loser is cancelled. Only a
    /// peer with nothing else to do gets duplicates: a busy one would spend
    /// upload the swarm needs on copies that are mostly thrown away.
    ///
    /// While the streaming window holds back the rest of the file, every
    /// block being requested is the normal state, not the end of the
    /// download: then, with [`WindowDuplicates::Overdue`], only overdue
    /// blocks get a duplicate (see [`overdue_blocks`](Self::overdue_blocks)).
    fn endgame(&mut self, now: Instant, key: PeerKey, room: &mut usize, chosen: &mut Vec<Block>) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if peer.on_parole || !peer.outstanding.is_empty() {
            return;
        }
        // Only overdue blocks if asked to, and only while the window, not
        // the file's end, is what has every block requested.
        let overdue = (self.config.streaming.window_duplicates == WindowDuplicates::Overdue
            && self.reach() < self.layout.piece_count())
        .then(|| self.overdue_blocks(now));
        for (&piece, partial) in self.partials.iter_mut() {
            if !peer.has_piece(piece) || partial.exclusive.is_some() {
                continue;
            }
            for (index, slot) in partial.blocks.iter_mut().enumerate() {
                if *room == 0 {
                    return;
                }
                let BlockSlot::Requested { by, also: None } = *slot else {
                    continue;
                };
                let Some(block) = self.layout.block_at(piece, index as u32) else {
                    continue;
                };
                let due = overdue.as_ref().is_none_or(|o| o.contains(&block));
                if by != key && due {
                    *slot = BlockSlot::Requested {
                        by,
                        also: Some(key),
                    };
                    chosen.push(block);
                    *room -= 1;
                }
            }
        }
    }

    /// Blocks asked of a peer longer ago than the request queue time, the
    /// time the queue we keep at a peer should take it to deliver.
    fn overdue_blocks(&self, now: Instant) -> BTreeSet<Block> {
        let overdue = self.config.request_queue_time;
        self.peers
            .values()
            .flat_map(|peer| peer.outstanding.iter())
            .filter(|o| now.saturating_duration_since(o.sent_at) > overdue)
            .map(|o| o.block)
            .collect()
    }

    fn send_requests(&mut self, now: Instant, key: PeerKey, blocks: &[Block]) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.outstanding.is_empty() && !blocks.is_empty() {
            peer.progress_at = now;
            tracing::trace!(
                peer = key.0,
                blocks = blocks.len(),
                "requesting from an idle peer"
            );
        }
        let messages: Vec<Message> = blocks
            .iter()
            .map(|block| {
                peer.outstanding.push(Outstanding {
                    block: *block,
                    sent_at: now,
                });
                Message::Request(request_of(*block))
            })
            .collect();
        self.send(now, key, &messages);
    }

    /// The peer will not deliver this block: make it available to others.
    pub(super) fn release_block(&mut self, key: PeerKey, block: Block) {
        let Some(partial) = self.partials.get_mut(&block.piece()) else {
            return;
        };
        let Some(slot) = partial.blocks.get_mut(block.index_in_piece() as usize) else {
            return;
        };
        *slot = match *slot {
            BlockSlot::Requested { by, also } if by == key => match also {
                Some(other) => BlockSlot::Requested {
                    by: other,
                    also: None,
                },
                None => BlockSlot::Missing,
            },
            BlockSlot::Requested { by, also: Some(k) } if k == key => {
                BlockSlot::Requested { by, also: None }
            }
            other => other,
        };
        self.drop_if_untouched(block.piece());
    }

    /// Forgets a started piece that nothing is fetching any more, so the
    /// picker may choose again.
    pub(super) fn drop_if_untouched(&mut self, piece: PieceIndex) {
        if self
            .partials
            .get(&piece)
            .is_some_and(PartialPiece::is_untouched)
        {
            self.partials.remove(&piece);
            self.emit(Event::Piece {
                piece,
                state: PieceState::Missing,
            });
        }
    }

    /// A peer is gone: pieces reserved for it open up to everyone, and if it
    /// was banned the blocks it supplied are thrown away.
    pub(super) fn forget_contributions(&mut self, key: PeerKey, discard_blocks: bool) {
        for partial in self.partials.values_mut() {
            if partial.exclusive == Some(key) {
                partial.exclusive = None;
            }
            if discard_blocks {
                for slot in partial.blocks.iter_mut() {
                    if *slot == BlockSlot::Received(Source::Peer(key)) {
                        *slot = BlockSlot::Missing;
                        partial.received -= 1;
                    }
                }
            }
        }
        let pieces: Vec<PieceIndex> = self.partials.keys().copied().collect();
        pieces.into_iter().for_each(|p| self.drop_if_untouched(p));
    }

    pub(super) fn note_attempt_failed(&mut self, piece: PieceIndex) {
        *self.attempts.entry(piece).or_default() += 1;
    }

    /// A block arrived from a peer.
    pub(super) fn block_received(&mut self, now: Instant, key: PeerKey, block: Block, data: &[u8]) {
        let len = data.len() as u64;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let requested = match peer.outstanding.iter().position(|o| o.block == block) {
            Some(i) => {
                let outstanding = peer.outstanding.remove(i);
                peer.sample_rtt(now.saturating_duration_since(outstanding.sent_at));
                true
            }
            None => peer.take_withdrawn(block),
        };
        peer.download.record(now, len);
        peer.downloaded += len;
        peer.progress_at = now;
        peer.failures = 0;
        self.p2p_rate.record(now, len);
        self.p2p_capacity.record(now, len);

        let Some(partial) = self.partials.get_mut(&block.piece()) else {
            return self.useless_block(now, key, data.len(), requested);
        };
        let index = block.index_in_piece() as usize;
        let slot = partial.blocks.get(index).copied();
        let other = match slot {
            None | Some(BlockSlot::Received(_)) => {
                return self.useless_block(now, key, data.len(), requested);
            }
            Some(BlockSlot::Requested { by, also }) => {
                [Some(by), also].into_iter().flatten().find(|k| *k != key)
            }
            Some(BlockSlot::Missing) => None,
        };
        let begin = block.begin() as usize;
        if let Some(target) = partial.data.get_mut(begin..begin + data.len()) {
            target.copy_from_slice(data);
        }
        partial.blocks[index] = BlockSlot::Received(Source::Peer(key));
        partial.received += 1;
        let complete = partial.received as usize == partial.blocks.len();
        if let Some(other) = other {
            self.cancel_request(now, other, block);
        }
        if complete {
            self.piece_complete(now, block.piece());
        }
    }

    /// Withdraws our request of `block` from a peer.
    pub(super) fn cancel_request(&mut self, now: Instant, key: PeerKey, block: Block) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let before = peer.outstanding.len();
        peer.outstanding.retain(|o| o.block != block);
        if peer.outstanding.len() != before {
            peer.withdrew(block);
            self.send(now, key, &[Message::Cancel(request_of(block))]);
        }
    }

    /// Peers whose queue made no progress within the policy's timeout lose
    /// their requests to other sources and are backed off.
    pub(super) fn check_peer_timeouts(&mut self, now: Instant) {
        let expired: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.outstanding.is_empty())
            .filter(|(_, p)| {
                let timeout = self.retry.request_timeout(&p.source_stats(now), BLOCK_SIZE);
                now.saturating_duration_since(p.progress_at) > timeout
            })
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let timed_out = std::mem::take(&mut peer.outstanding);
            timed_out.iter().for_each(|o| peer.withdrew(o.block));
            peer.failures += 1;
            let failures = peer.failures;
            peer.backoff_until = Some(now + self.retry.backoff(failures));
            let cancels: Vec<Message> = timed_out
                .iter()
                .map(|o| Message::Cancel(request_of(o.block)))
                .collect();
            self.send(now, key, &cancels);
            let mut pieces: Vec<PieceIndex> = timed_out.iter().map(|o| o.block.piece()).collect();
            pieces.dedup();
            for outstanding in timed_out {
                self.release_block(key, outstanding.block);
            }
            pieces.into_iter().for_each(|p| self.note_attempt_failed(p));
            if failures >= MAX_PEER_FAILURES {
                self.drop_peer(now, key, CloseReason::Unresponsive, true);
            }
        }
    }
}

pub(super) fn request_of(block: Block) -> BlockRequest {
    BlockRequest {
        index: block.piece().get(),
        begin: block.begin(),
        length: block.length(),
    }
}
