//! What the swarm knows about one connection.

use std::collections::VecDeque;
use std::time::Duration;

use web_time::Instant;

use super::playhead::HeardPlayhead;
use crate::layout::Block;
use crate::piece_map::Bitfield;
use crate::rate::{RateEstimator, TokenBucket};
use crate::retry::SourceStats;
use crate::wire::{Decoder, HandshakeDecoder};

/// Where the connection's byte stream is.
#[derive(Debug)]
pub(super) enum WireState {
    /// Waiting for the peer's 68-byte handshake.
    Handshaking(HandshakeDecoder),
    /// Exchanging messages; `first` until the peer's first availability
    /// message (bitfield, have all, have none or have).
    Active { decoder: Decoder, first: bool },
    /// Transitional, while the decoder is being moved.
    Closed,
}

/// Withdrawn requests remembered per peer: more than a full request queue.
const MAX_CANCELLED_REMEMBERED: usize = 512;

/// A block we asked this peer for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outstanding {
    pub(super) block: Block,
    pub(super) sent_at: Instant,
}

/// One connection's protocol and transfer state.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) wire: WireState,
    pub(super) peer_id: Option<[u8; 20]>,
    pub(super) fast: bool,
    /// The extended id it wants `cs_origin` claims sent with, if it speaks them.
    pub(super) origin_claim_id: Option<u8>,
    /// The claims in force when it first offered `cs_origin` were sent to it.
    pub(super) told_claims: bool,
    /// The extended id it wants `cs_playhead` messages sent with.
    pub(super) playhead_id: Option<u8>,
    /// Where it plays, as it last told us.
    pub(super) playhead: Option<HeardPlayhead>,
    /// The extended id it wants `ut_metadata` messages sent with.
    pub(super) metadata_id: Option<u8>,
    /// What it may still be sent of the metadata, made at its first
    /// request ([`super::metadata`]).
    pub(super) metadata_budget: Option<TokenBucket>,
    /// The pieces it has; meaningless while `is_seed`.
    pub(super) has: Bitfield,
    /// It has every piece; counted once in the availability seed counter.
    pub(super) is_seed: bool,
    pub(super) am_choking: bool,
    pub(super) am_interested: bool,
    pub(super) peer_choking: bool,
    pub(super) peer_interested: bool,
    /// Our requests to it, oldest first.
    pub(super) outstanding: Vec<Outstanding>,
    /// Its requests to us, oldest first.
    pub(super) incoming: VecDeque<Block>,
    /// Its channel is above the adapter's high-water mark: send no blocks.
    pub(super) blocked: bool,
    pub(super) download: RateEstimator,
    pub(super) upload: RateEstimator,
    pub(super) rtt: Option<Duration>,
    pub(super) last_received: Instant,
    pub(super) last_sent: Instant,
    /// Last time a block arrived, or a request was first sent into an empty queue.
    pub(super) progress_at: Instant,
    pub(super) failures: u32,
    pub(super) backoff_until: Option<Instant>,
    /// Took part in a failed piece: until it delivers a piece alone, it only
    /// gets pieces no one else is fetching, so blame is unambiguous.
    pub(super) on_parole: bool,
    pub(super) unsolicited_blocks: u32,
    /// Requests we withdrew, newest last: their blocks may still arrive,
    /// having crossed our cancel, and are late rather than unsolicited.
    pub(super) cancelled: VecDeque<Block>,
    /// Block bytes received from it.
    pub(super) downloaded: u64,
    /// Block bytes sent to it.
    pub(super) uploaded: u64,
}

impl Peer {
    pub(super) fn new(now: Instant, handshake: HandshakeDecoder, pieces: u32) -> Self {
        Self {
            wire: WireState::Handshaking(handshake),
            peer_id: None,
            fast: false,
            origin_claim_id: None,
            told_claims: false,
            playhead_id: None,
            playhead: None,
            metadata_id: None,
            metadata_budget: None,
            has: Bitfield::new(pieces),
            is_seed: false,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            outstanding: Vec::new(),
            incoming: VecDeque::new(),
            blocked: false,
            download: RateEstimator::new(Duration::from_secs(3)),
            upload: RateEstimator::new(Duration::from_secs(3)),
            rtt: None,
            last_received: now,
            last_sent: now,
            progress_at: now,
            failures: 0,
            backoff_until: None,
            on_parole: false,
            unsolicited_blocks: 0,
            cancelled: VecDeque::new(),
            downloaded: 0,
            uploaded: 0,
        }
    }

    pub(super) fn is_active(&self) -> bool {
        matches!(self.wire, WireState::Active { .. })
    }

    pub(super) fn has_piece(&self, piece: crate::layout::PieceIndex) -> bool {
        self.is_seed || self.has.contains(piece)
    }

    pub(super) fn source_stats(&self, now: Instant) -> SourceStats {
        SourceStats {
            rate: self.download.rate(now),
            rtt: self.rtt,
            queued_blocks: self.outstanding.len() as u32,
            failures: self.failures,
        }
    }

    /// Whether blocks may be requested from it now.
    pub(super) fn can_request(&self, now: Instant) -> bool {
        self.is_active()
            && !self.peer_choking
            && self.am_interested
            && self.backoff_until.is_none_or(|until| now >= until)
    }

    /// Remembers a withdrawn request, within a bound.
    pub(super) fn withdrew(&mut self, block: Block) {
        if self.cancelled.len() >= MAX_CANCELLED_REMEMBERED {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(block);
    }

    /// Whether the block answers a request we withdrew (forgetting it).
    pub(super) fn take_withdrawn(&mut self, block: Block) -> bool {
        let found = self.cancelled.iter().position(|b| *b == block);
        found.map(|i| self.cancelled.remove(i)).is_some()
    }

    /// Folds a round-trip sample into the smoothed estimate (RFC 6298 weights).
    pub(super) fn sample_rtt(&mut self, sample: Duration) {
        self.rtt = Some(match self.rtt {
            None => sample,
            Some(rtt) => (rtt * 7 + sample) / 8,
        });
    }
}
