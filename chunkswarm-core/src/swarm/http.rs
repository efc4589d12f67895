//! The HTTP web seed as a metered source.
//!
//! HTTP takes a piece only for a reason, checked in this order:
//!
//! 1. the fast start (the first piece, or the playhead's);
//! 2. a playback deadline that peers are about to miss;
//! 3. a piece whose peer attempts ran out (the retry policy decides),
//!    within the playback window when streaming;
//! 4. with `use_swarm_facts`, a piece nobody in the swarm holds that the
//!    tracker's facts name us to fetch (see `facts`), one at a time, within the playback window when
//!    streaming, while no neighbour holds it: even while playback is
//!    urgent, since no peer can bring it, but not beside a fast start or a
//!    rescue, whose share of our link it would take;
//! 5. a piece no connected peer holds, one at a time, so that the origin
//!    puts every piece into the swarm early, while peers still have the
//!    upload to spread it. A peer takes only the pieces it ranks highest for
//!    among its neighbours (rendezvous hashing of peer id and piece), so
//!    neighbours split the origin's pieces, and none that someone nearby
//!    claimed to be fetching already (see `claims`), nor, when streaming,
//!    one that a neighbour lacking it plays first, early enough to pass it
//!    on at the rate it has sent to us before our own rescue of it would
//!    start (its own fetch brings it), nor (with `use_swarm_facts`), by the
//!    tracker's facts, one that a member holds or another is to fetch. Once
//!    the peer pipeline has starved (fewer block requests outstanding than
//!    `starving_below_blocks`) for `starving_fallback`, it also takes
//!    unclaimed pieces a neighbour ranks higher for, pieces the facts leave
//!    to others unless it streams (its rescues bring what it needs), and any
//!    piece at all when no peer will serve it.
//!
//! Reason 5 waits `patience` after start or after the last peer left, and a
//! viewer skips it while the origin is overloaded: while our recent
//! whole-piece fetches that ran alone came in at under half the best such
//! rate (in the simulator's `vod` seed 5 the origin was saturated for 95 s,
//! viewers' first pieces took up to 1.6 s and one viewer stalled 1.5 s). A
//! `MaxBytesPerSecond` budget bounds every reason; a `TargetP2pShare` budget
//! bounds reason 3 only, since the others are pieces peers cannot supply in
//! time or at all. Reasons 4 and 5 count as `no_peer_source`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use web_time::Instant;

use super::config::{OriginBudget, StartupTrust, SwarmConfig};
use super::download::{BlockSlot, PartialPiece};
use super::peer::Peer;
use super::playhead::HeardPlayhead;
use super::{Event, HttpRequestId, Output, PeerKey, PieceState, Playback, Source, Swarm};
use crate::driver::HttpError;
use crate::layout::{BLOCK_SIZE, Layout, PieceIndex};
use crate::pick::PeerView;
use crate::piece_map::Bitfield;
use crate::rate::TokenBucket;
use crate::rng::mix;

/// Blocks of a playback rescue asked of a neighbour that never delivered to
/// us, to learn whether it beats the origin.
const PROBE_BLOCKS: u32 = 2;

#[derive(Debug)]
struct Fetch {
    piece: PieceIndex,
    /// The blocks it brings: those not yet received when it started.
    blocks: Range<u32>,
    started: Instant,
    deadline: Instant,
    reason: Reason,
    /// Another of our fetches ran beside it for some of its time.
    shared: bool,
}

/// Requests in flight to the web seed and the state of the origin.
#[derive(Debug)]
pub(super) struct HttpState {
    in_flight: BTreeMap<HttpRequestId, Fetch>,
    next_id: u64,
    failures: u32,
    backoff_until: Option<Instant>,
    bucket: Option<TokenBucket>,
    patient_until: Instant,
    fast_start_done: bool,
    /// Since when fewer requests than the threshold are outstanding to peers.
    starving_since: Option<Instant>,
    /// Bytes per second of the origin's fetches, from request to last byte.
    pub(super) origin_rate: Option<f64>,
    /// Bytes per second of recent whole-piece fetches that ran alone, and
    /// the best of them.
    pub(super) alone_rate: Option<f64>,
    pub(super) best_alone_rate: f64,
    /// Answers since the last success saying that asking again cannot help.
    refusals: u32,
    /// The web seed is asked no more: the last of its refusals.
    gone: Option<HttpError>,
    /// Since when the torrent has had no source, and whether that was
    /// reported.
    sourceless_since: Option<Instant>,
    sourceless_reported: bool,
}

impl HttpState {
    pub(super) fn new(now: Instant, config: &SwarmConfig, piece_length: u32) -> Self {
        // Two pieces of burst: one fetch may always start.
        let burst = 2 * u64::from(piece_length);
        let bucket = match config.http.budget {
            OriginBudget::MaxBytesPerSecond(rate) => Some(TokenBucket::new(rate, burst)),
            _ => None,
        };
        Self {
            in_flight: BTreeMap::new(),
            next_id: 0,
            failures: 0,
            backoff_until: None,
            bucket,
            patient_until: now + config.http.patience,
            fast_start_done: !config.http.first_piece_from_http,
            starving_since: None,
            origin_rate: None,
            alone_rate: None,
            best_alone_rate: 0.0,
            refusals: 0,
            gone: None,
            sourceless_since: None,
            sourceless_reported: false,
        }
    }

    pub(super) fn no_peers_since(&mut self, now: Instant) {
        // Only restart the wait if it had already run out.
        if self.patient_until < now {
            self.patient_until = now;
        }
    }

    /// The piece a playback rescue (or the fast start) is fetching, if any.
    pub(super) fn rescuing(&self) -> Option<PieceIndex> {
        self.in_flight
            .values()
            .filter(|f| matches!(f.reason, Reason::FastStart | Reason::Deadline))
            .map(|f| f.piece)
            .min()
    }

    /// When the rescue of `piece` was sent, if one is in flight.
    pub(super) fn rescue_started(&self, piece: PieceIndex) -> Option<Instant> {
        self.in_flight
            .values()
            .filter(|f| {
                f.piece == piece && matches!(f.reason, Reason::FastStart | Reason::Deadline)
            })
            .map(|f| f.started)
            .min()
    }

    pub(super) fn in_flight_pieces(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.in_flight.values().map(|f| f.piece)
    }

    pub(super) fn in_flight_ids(&self) -> Vec<HttpRequestId> {
        self.in_flight.keys().copied().collect()
    }
}

/// Why HTTP takes a piece; the first two may exceed the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    FastStart,
    Deadline,
    RetriesExhausted,
    NoPeerSource,
    /// No member of the swarm holds it and the tracker named us to fetch it
    /// (counted as [`NoPeerSource`](Reason::NoPeerSource)).
    Assigned,
}

impl Swarm {
    pub(super) fn maybe_fetch_http(&mut self, now: Instant) {
        let http = &self.http;
        if !self.config.http.enabled
            || self.paused
            || self.completed
            || http.gone.is_some()
            || http.backoff_until.is_some_and(|t| now < t)
        {
            return;
        }
        let asking = self.peers.values().any(|p| !p.outstanding.is_empty());
        self.p2p_capacity.set_busy(now, asking);
        if self.starving() {
            self.http.starving_since.get_or_insert(now);
        } else {
            self.http.starving_since = None;
        }
        while self.http.in_flight.len() < self.config.http.max_in_flight {
            let Some((piece, reason)) = self.choose_http_piece(now) else {
                return;
            };
            if !self.within_budget(now, piece, reason) {
                return;
            }
            let counts = &mut self.stats.origin_fetches;
            match reason {
                Reason::FastStart => {
                    self.http.fast_start_done = true;
                    counts.fast_start += 1;
                }
                Reason::Deadline => counts.deadline += 1,
                Reason::RetriesExhausted => counts.retries_exhausted += 1,
                Reason::NoPeerSource | Reason::Assigned => counts.no_peer_source += 1,
            }
            self.start_http(now, piece, reason);
        }
    }

    fn choose_http_piece(&mut self, now: Instant) -> Option<(PieceIndex, Reason)> {
        let free = |s: &Self, p: PieceIndex| {
            !s.have.contains(p)
                && s.partials
                    .get(&p)
                    .is_none_or(|partial| partial.http.is_none())
        };
        let window = self.window();
        if !self.http.fast_start_done {
            let first = window
                .clone()
                .filter_map(|i| self.layout.piece(i))
                .chain(self.have.iter_zeros())
                .find(|&p| free(self, p));
            if let Some(piece) = first {
                return Some((piece, Reason::FastStart));
            }
        }
        let focus = self.focus(now);
        let due = focus.clone().unwrap_or(window);
        // Rescues go one at a time in playback order: two in parallel would
        // share the link and both arrive late. A piece due before the one
        // being rescued (its last blocks stuck with a slow peer, or a seek
        // back) is the exception: playback needs it first.
        let rescuing = self.http.rescuing();
        let urgent = self
            .first_at_risk(now, due, &free)
            .filter(|p| rescuing.is_none_or(|r| *p < r));
        if let Some(piece) = urgent {
            return Some((piece, Reason::Deadline));
        }
        // A piece nobody in the swarm holds, which the tracker names us to
        // fetch: no peer can bring it, so playback does not wait for it.
        if let Some(piece) = self.assigned_piece(now) {
            return Some((piece, Reason::Assigned));
        }
        if focus.is_some() {
            // Playback needs the whole link for the pieces that are due.
            return None;
        }
        // Within the window when streaming: a piece fetched ahead of it
        // from peers that failed there has time to come from others. (A
        // viewer fetches unheld pieces only within it too: viewers ahead of
        // it will hold the later ones by then.)
        let reach = self.reach();
        let exhausted = self
            .attempts
            .iter()
            .find(|(p, n)| self.retry.use_http_after(**n) && free(self, **p) && p.get() < reach)
            .map(|(p, _)| *p);
        if let Some(piece) = exhausted {
            return Some((piece, Reason::RetriesExhausted));
        }
        let busy = self
            .http
            .in_flight
            .values()
            .any(|f| f.reason == Reason::NoPeerSource);
        if now < self.http.patient_until || busy {
            return None;
        }
        // A viewer's rescues bring what its playback needs; while the origin
        // is overloaded, fetching early what no neighbour holds yet would
        // only make everyone's rescues late.
        if self.playback.is_some() && self.origin_congested() {
            return None;
        }
        let long_starved = self
            .http
            .starving_since
            .is_some_and(|since| now >= since + self.config.http.starving_fallback);
        let (have, partials, claims) = (&self.have, &self.partials, &self.claims);
        let facts = &self.facts;
        let facts_on = self.config.http.use_swarm_facts;
        // A streaming viewer with its window full starves by design: its
        // rescues, not starving, bring what the swarm does not in time.
        let fallback = long_starved && self.playback.is_none();
        // Not held, nothing fetching it, not on its way to someone nearby,
        // and neither held in the swarm nor another member's to fetch, by
        // the tracker's facts (unless starved without playback).
        let takeable = |p: PieceIndex| {
            !have.contains(p)
                && partials.get(&p).is_none_or(PartialPiece::is_idle)
                && !claims.is_claimed(p, now)
                && (!facts_on
                    || fallback
                    || !(facts.held_elsewhere(p) || facts.fetched_elsewhere(p)))
        };
        if self.availability.seeds() == 0 {
            let ranks = self.neighbour_ranks();
            // The neighbour's copy must reach us before our own rescue of
            // the piece would start.
            let lead = self.rescue_lead(u64::from(self.layout.piece_length()));
            let spare = Duration::try_from_secs_f64(lead).unwrap_or(Duration::MAX);
            let first = plays_it_first(&self.peers, &self.layout, self.playback, now, spare);
            let ours = |p: PieceIndex| long_starved || (ranks.owns(p) && !first(p));
            let piece = self
                .picker
                .pick_unavailable(&mut |p| takeable(p) && p.get() < reach && ours(p));
            if let Some(piece) = piece {
                return Some((piece, Reason::NoPeerSource));
            }
        }
        let serving = self
            .peers
            .values()
            .any(|p| p.is_active() && !p.peer_choking);
        if serving || !long_starved {
            return None;
        }
        // Peers hold what is left but none will serve us: take any piece.
        let everything = Bitfield::new(0);
        let view = PeerView {
            has: &everything,
            is_seed: true,
        };
        self.picker
            .pick(view, &mut |p| takeable(p))
            .map(|p| (p, Reason::NoPeerSource))
    }

    /// The first piece the tracker named us to fetch that no neighbour
    /// holds, nothing fetches and no neighbour claimed, within the playback
    /// window when streaming; one at a time, and not beside the fast start
    /// or a rescue.
    fn assigned_piece(&self, now: Instant) -> Option<PieceIndex> {
        if !self.config.http.use_swarm_facts {
            return None;
        }
        // Beside a fast start or a rescue it would share our link and make
        // playback wait (in the simulator's `streaming` scenario, the fast
        // start took 1.75 s rather than 0.91 s); it follows them.
        let busy = self.http.rescuing().is_some()
            || self
                .http
                .in_flight
                .values()
                .any(|f| f.reason == Reason::Assigned);
        if busy {
            return None;
        }
        let reach = self.reach();
        self.facts
            .to_fetch()
            .take_while(|p| *p < reach)
            .filter_map(|p| self.layout.piece(p))
            .find(|&p| {
                !self.have.contains(p)
                    && self.availability.count(p) == 0
                    && self.partials.get(&p).is_none_or(PartialPiece::is_idle)
                    && !self.claims.is_claimed(p, now)
            })
    }

    /// The first piece of `due` (in playback order) that peers will not
    /// deliver before its deadline: at the rate peers deliver when asked
    /// (measured over the time requests were outstanding, so that a viewer
    /// whose window is full does not take its idle peers for slow ones) the
    /// bytes still missing up to and including it arrive later than the
    /// deadline minus the rescue lead. At the start of playback, pieces that
    /// neighbours hold are left to them for longer (see [`StartupTrust`]).
    pub(super) fn first_at_risk(
        &self,
        now: Instant,
        due: Range<u32>,
        free: &dyn Fn(&Self, PieceIndex) -> bool,
    ) -> Option<PieceIndex> {
        let trust = self.startup_trust();
        let speed = self.origin_speed();
        // Until a piece's worth came from peers, they are taken to fill the
        // link as the origin's fast start did.
        let unmeasured = self.p2p_capacity.total() < u64::from(self.layout.piece_length());
        let rate = if trust.is_some() && unmeasured && self.config.http.first_piece_from_http {
            speed
        } else {
            self.p2p_capacity.rate(now)
        }
        .max(1.0);
        // What the origin still has to bring us before a new rescue (the
        // trust's last call waits for it).
        let origin_owes: u64 = trust.map_or(0, |_| {
            let fetching = self.http.in_flight.values();
            fetching.map(|f| self.missing_bytes(f.piece)).sum()
        });
        let margin = self.config.streaming.rescue_margin.as_secs_f64();
        let mut backlog = 0u64;
        let mut first_late = None;
        let mut first_trusted_late = None;
        for piece in due.filter_map(|i| self.layout.piece(i)) {
            if self.have.contains(piece) {
                continue;
            }
            let missing = self.missing_bytes(piece);
            backlog += missing;
            let deadline = self.deadline(now, piece)?;
            if !free(self, piece) {
                continue;
            }
            let left = deadline.saturating_duration_since(now).as_secs_f64();
            let lead = self.rescue_lead(missing);
            let late = match self.claimant_delivers(now, piece) {
                // The claimant brings it; then it crosses our link.
                Some(wait) => left < wait + lead,
                None => left < backlog as f64 / rate + lead,
            };
            if late {
                first_late.get_or_insert(piece);
            }
            let trusted = trust.filter(|t| self.unchoking_holders(piece) >= t.holders);
            match trusted {
                Some(t) => {
                    let peers_late = left < backlog as f64 / rate + t.spare.as_secs_f64();
                    let origin_last_call = left < (missing + origin_owes) as f64 / speed + margin;
                    if peers_late || origin_last_call {
                        first_trusted_late.get_or_insert(piece);
                    }
                }
                None if late => return first_late,
                None => {}
            }
        }
        first_trusted_late
    }

    /// The startup trust, while peers have yet to bring its pieces' worth.
    fn startup_trust(&self) -> Option<&StartupTrust> {
        self.config.streaming.startup_trust.as_ref().filter(|t| {
            self.p2p_capacity.total() < u64::from(t.pieces) * u64::from(self.layout.piece_length())
        })
    }

    /// Neighbours that hold `piece` and unchoke us.
    fn unchoking_holders(&self, piece: PieceIndex) -> usize {
        self.peers
            .values()
            .filter(|p| p.is_active() && !p.peer_choking && p.has_piece(piece))
            .count()
    }

    /// Seconds until a neighbour that is fetching `piece` from the origin
    /// itself (by its claim) should hold it, while no neighbour holds it yet:
    /// the claim was heard less than the origin's time for a piece, plus the
    /// rescue margin, ago, and the claimant is still connected. A rescue of
    /// the piece then waits for the claimant as long as a whole rescue lead
    /// would remain (so two viewers do not both pay for it), and a claimant
    /// that does not deliver costs no more than that wait.
    fn claimant_delivers(&self, now: Instant, piece: PieceIndex) -> Option<f64> {
        if self.availability.count(piece) > 0 {
            return None;
        }
        let (claimant, heard) = self.claims.fetching_neighbour(piece, now)?;
        if !self.peers.get(&claimant).is_some_and(|p| p.is_active()) {
            return None;
        }
        let fetch = self.rescue_lead(u64::from(self.layout.piece_len(piece)));
        let waited = now.saturating_duration_since(heard).as_secs_f64();
        (waited < fetch).then_some(fetch - waited)
    }

    /// Our recent whole-piece fetches that ran alone came in at under half
    /// the best such rate: the origin (or the way to it) is overloaded.
    pub(super) fn origin_congested(&self) -> bool {
        self.http
            .alone_rate
            .is_some_and(|rate| rate < 0.5 * self.http.best_alone_rate)
    }

    /// How long before its deadline a rescue of `missing` bytes must start:
    /// the origin's time for them plus the rescue margin.
    pub(super) fn rescue_lead(&self, missing: u64) -> f64 {
        missing as f64 / self.origin_speed() + self.config.streaming.rescue_margin.as_secs_f64()
    }

    /// The origin's bytes per second: measured, or a piece per
    /// `origin_piece_time` until a fetch is measured.
    fn origin_speed(&self) -> f64 {
        self.http.origin_rate.unwrap_or_else(|| {
            let guess = self.config.streaming.origin_piece_time.as_secs_f64();
            f64::from(self.layout.piece_length().max(1)) / guess.max(1e-3)
        })
    }

    /// How many blocks of `piece`, which HTTP is fetching, the neighbour
    /// `key` may bring as well. Only a playback rescue that the origin, at
    /// its speed, will bring after the piece's deadline is raced (playback
    /// will wait for it anyway): by a neighbour that delivers faster than the
    /// origin, for every block (the first source to bring them all wins; the
    /// other is cancelled), and by one that never delivered to us, for
    /// [`PROBE_BLOCKS`], which measure it. A neighbour's speed is the higher
    /// of its measured rate and a block per round trip, so a fast neighbour
    /// shows itself with its first block. (A rescue on time is not raced:
    /// where the viewer's own link limits the origin, the racing blocks
    /// would take from the rescue's share of it and make it late.)
    pub(super) fn rescue_race_blocks(&self, now: Instant, key: PeerKey, piece: PieceIndex) -> u32 {
        let Some(peer) = self.peers.get(&key) else {
            return 0;
        };
        let Some(deadline) = self.deadline(now, piece) else {
            return 0;
        };
        let origin = self.origin_speed();
        let late = self
            .http
            .in_flight
            .values()
            .filter(|fetch| fetch.piece == piece && fetch.reason == Reason::Deadline)
            .any(|fetch| {
                let span = self.block_span(piece, fetch.blocks.clone());
                let takes = (span.end - span.start) as f64 / origin;
                fetch.started + Duration::from_secs_f64(takes) > deadline
            });
        if !late {
            return 0;
        }
        let Some(rtt) = peer.rtt else {
            return PROBE_BLOCKS;
        };
        let per_round_trip = f64::from(BLOCK_SIZE) / rtt.as_secs_f64().max(1e-3);
        if peer.download.rate(now).max(per_round_trip) > origin {
            self.layout.block_count(piece)
        } else {
            0
        }
    }

    /// Bytes of the piece not yet received.
    pub(super) fn missing_bytes(&self, piece: PieceIndex) -> u64 {
        let len = u64::from(self.layout.piece_len(piece));
        let Some(partial) = self.partials.get(&piece) else {
            return len;
        };
        let received: u64 = self
            .layout
            .blocks(piece)
            .zip(&partial.blocks)
            .filter(|(_, slot)| matches!(slot, BlockSlot::Received(_)))
            .map(|(block, _)| u64::from(block.length()))
            .sum();
        len - received
    }

    /// Rendezvous ranks of us and our neighbours for every piece.
    fn neighbour_ranks(&self) -> Ranks {
        Ranks {
            own: id_hash(&self.config.peer_id),
            neighbours: self
                .peers
                .values()
                .filter_map(|p| p.peer_id.as_ref().map(id_hash))
                .collect(),
        }
    }

    /// Too few block requests outstanding to peers to keep the link busy.
    fn starving(&self) -> bool {
        let outstanding: usize = self.peers.values().map(|p| p.outstanding.len()).sum();
        outstanding < self.config.http.starving_below_blocks as usize
    }

    fn within_budget(&mut self, now: Instant, piece: PieceIndex, reason: Reason) -> bool {
        let len = u64::from(self.layout.piece_len(piece));
        match self.config.http.budget {
            OriginBudget::Unlimited => true,
            OriginBudget::MaxBytesPerSecond(_) => self
                .http
                .bucket
                .as_mut()
                .is_none_or(|bucket| bucket.try_take(now, len)),
            OriginBudget::TargetP2pShare(share) => {
                if matches!(
                    reason,
                    Reason::FastStart | Reason::Deadline | Reason::NoPeerSource | Reason::Assigned
                ) {
                    return true;
                }
                let http = (self.stats.http_bytes_received + len) as f64;
                let total = (self.stats.http_bytes_received + self.stats.p2p_bytes + len) as f64;
                http <= (1.0 - share.clamp(0.0, 1.0)) * total
            }
        }
    }

    fn start_http(&mut self, now: Instant, piece: PieceIndex, reason: Reason) {
        let id = HttpRequestId(self.http.next_id);
        self.http.next_id += 1;
        let fresh = !self.partials.contains_key(&piece);
        let partial = self.partials.entry(piece).or_insert_with(|| {
            PartialPiece::new(self.layout.piece_len(piece), self.layout.block_count(piece))
        });
        partial.http = Some(id);
        // HTTP brings the span of blocks not yet received; peers' requests
        // inside it are withdrawn, so no byte crosses our link twice.
        let unreceived = |slot: &BlockSlot| !matches!(slot, BlockSlot::Received(_));
        let first = partial.blocks.iter().position(unreceived).unwrap_or(0);
        let end = partial
            .blocks
            .iter()
            .rposition(unreceived)
            .map_or(0, |i| i + 1);
        let blocks = first as u32..end.max(first + 1) as u32;
        let mut withdrawn = Vec::new();
        for index in blocks.clone() {
            let slot = &mut partial.blocks[index as usize];
            if let BlockSlot::Requested { by, also } = *slot {
                withdrawn.extend([Some(by), also].into_iter().flatten().map(|k| (k, index)));
                *slot = BlockSlot::Missing;
            }
        }
        let range = self.block_span(piece, blocks.clone());
        let timeout = self.retry.http_timeout(range.end - range.start);
        let shared = !self.http.in_flight.is_empty();
        for other in self.http.in_flight.values_mut() {
            other.shared = true;
        }
        self.http.in_flight.insert(
            id,
            Fetch {
                piece,
                blocks,
                started: now,
                deadline: now + timeout,
                reason,
                shared,
            },
        );
        for (key, index) in withdrawn {
            if let Some(block) = self.layout.block_at(piece, index) {
                self.cancel_request(now, key, block);
            }
        }
        self.outputs.push_back(Output::HttpFetch { id, range });
        self.claim_origin_fetch(now, piece);
        if fresh {
            self.emit(Event::Piece {
                piece,
                state: PieceState::Requested(Source::Http),
            });
        }
    }

    /// The content byte range of a run of a piece's blocks.
    fn block_span(&self, piece: PieceIndex, blocks: Range<u32>) -> Range<u64> {
        let offset = |index: u32| {
            self.layout
                .block_at(piece, index)
                .map(|b| self.layout.block_offset(b))
        };
        let piece_range = self.layout.piece_range(piece);
        let start = offset(blocks.start).unwrap_or(piece_range.start);
        let end = offset(blocks.end).unwrap_or(piece_range.end);
        start..end
    }

    pub(super) fn cancel_http(&mut self, id: HttpRequestId) {
        if let Some(fetch) = self.http.in_flight.remove(&id) {
            if let Some(partial) = self.partials.get_mut(&fetch.piece) {
                if partial.http == Some(id) {
                    partial.http = None;
                }
            }
            self.outputs.push_back(Output::HttpCancel { id });
        }
    }

    pub(super) fn http_response(
        &mut self,
        now: Instant,
        id: HttpRequestId,
        result: Result<Bytes, HttpError>,
    ) {
        let Some(fetch) = self.http.in_flight.remove(&id) else {
            return;
        };
        let piece = fetch.piece;
        let span = self.block_span(piece, fetch.blocks.clone());
        let expected = (span.end - span.start) as usize;
        let body = match result {
            Ok(body) if body.len() == expected => body,
            Ok(body) => {
                self.stats.http_bytes_received += body.len() as u64;
                let error = HttpError::Length {
                    expected: expected as u64,
                    got: body.len() as u64,
                };
                return self.http_gave_up(now, piece, id, error);
            }
            Err(error) => return self.http_gave_up(now, piece, id, error),
        };
        self.http.failures = 0;
        self.http.refusals = 0;
        self.stats.http_bytes_received += body.len() as u64;
        let took = now.saturating_duration_since(fetch.started).as_secs_f64();
        if took > 0.0 {
            let sample = body.len() as f64 / took;
            let blend = |rate: Option<f64>| Some(rate.map_or(sample, |r| 0.5 * (r + sample)));
            self.http.origin_rate = blend(self.http.origin_rate);
            let whole = fetch.blocks.len() as u32 == self.layout.block_count(piece);
            if whole && !fetch.shared {
                self.http.alone_rate = blend(self.http.alone_rate);
                self.http.best_alone_rate = self.http.best_alone_rate.max(sample);
            }
        }
        self.http_rate.record(now, body.len() as u64);
        let piece_start = self.layout.piece_offset(piece);
        let Some(partial) = self.partials.get_mut(&piece) else {
            return;
        };
        partial.http = None;
        let begin = (span.start - piece_start) as usize;
        let mut cancels = Vec::new();
        for block in self.layout.blocks(piece).skip(fetch.blocks.start as usize) {
            let index = block.index_in_piece();
            if !fetch.blocks.contains(&index) {
                break;
            }
            let slot = &mut partial.blocks[index as usize];
            match *slot {
                // A block that crossed our cancel got here first.
                BlockSlot::Received(_) => continue,
                BlockSlot::Requested { by, also } => {
                    cancels.extend([Some(by), also].into_iter().flatten().map(|k| (k, block)));
                }
                BlockSlot::Missing => {}
            }
            let at = block.begin() as usize;
            let len = block.length() as usize;
            partial.data[at..at + len].copy_from_slice(&body[at - begin..at - begin + len]);
            *slot = BlockSlot::Received(Source::Http);
            partial.received += 1;
        }
        let complete = partial.received as usize == partial.blocks.len();
        for (key, block) in cancels {
            self.cancel_request(now, key, block);
        }
        if complete {
            self.piece_complete(now, piece);
        } else {
            self.fill_all_requests(now);
        }
    }

    fn http_gave_up(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        id: HttpRequestId,
        error: HttpError,
    ) {
        if let Some(partial) = self.partials.get_mut(&piece) {
            if partial.http == Some(id) {
                partial.http = None;
            }
        }
        self.drop_if_untouched(piece);
        let permanent = error.is_permanent();
        self.emit(Event::HttpFailed {
            piece,
            error: error.clone(),
        });
        self.http_failed(now);
        if permanent && self.http.gone.is_none() {
            self.http.refusals += 1;
            if self.http.refusals >= self.config.http.gone_after {
                tracing::warn!(%error, "the web seed refused every time: asking it no more");
                self.http.gone = Some(error.clone());
                self.emit(Event::OriginGone { error });
            }
        }
        self.fill_all_requests(now);
    }

    /// Reports once when the torrent has gone without any source for
    /// `no_source_timeout`: incomplete, not paused, no peer connected, no
    /// web seed to use. Runs every tick.
    pub(super) fn check_sources(&mut self, now: Instant) {
        let origin_usable = self.config.http.enabled && self.http.gone.is_none();
        let sourceless = !self.completed && !self.paused && self.peers.is_empty() && !origin_usable;
        if !sourceless {
            self.http.sourceless_since = None;
            self.http.sourceless_reported = false;
            return;
        }
        let since = *self.http.sourceless_since.get_or_insert(now);
        if !self.http.sourceless_reported
            && now.saturating_duration_since(since) >= self.config.no_source_timeout
        {
            self.http.sourceless_reported = true;
            let origin = self.http.gone.clone();
            self.emit(Event::NoSourceLeft { origin });
        }
    }

    /// The origin failed: back off before asking it again.
    pub(super) fn http_failed(&mut self, now: Instant) {
        self.http.failures += 1;
        self.http.backoff_until = Some(now + self.retry.backoff(self.http.failures));
    }

    pub(super) fn check_http_timeouts(&mut self, now: Instant) {
        let expired: Vec<(HttpRequestId, PieceIndex)> = self
            .http
            .in_flight
            .iter()
            .filter(|(_, f)| now >= f.deadline)
            .map(|(id, f)| (*id, f.piece))
            .collect();
        for (id, piece) in expired {
            self.cancel_http(id);
            self.http_gave_up(now, piece, id, HttpError::TimedOut);
        }
    }
}

/// Whether a neighbour lacking a piece will play it early enough to pass it
/// on to us before we need it, by the playheads it and we reported and the
/// rate it has sent to us at, with `spare` to spare (our rescue lead, which
/// holds a margin): its own rescue or unheld-piece fetch brings the piece,
/// and we take it from the neighbour. A neighbour that has sent us nothing
/// yet does not count.
fn plays_it_first<'a>(
    peers: &'a BTreeMap<PeerKey, Peer>,
    layout: &'a Layout,
    playback: Option<Playback>,
    now: Instant,
    spare: Duration,
) -> impl Fn(PieceIndex) -> bool + 'a {
    // Not playing, we have no deadline to compare: no neighbour is asked.
    let ahead: Vec<(&Bitfield, HeardPlayhead, f64)> = peers
        .values()
        .filter(|_| playback.is_some())
        .filter(|p| p.is_active())
        .filter_map(|p| Some((&p.has, p.playhead?, p.download.rate(now))))
        .filter(|(_, _, rate)| *rate > 0.0)
        .collect();
    move |piece| {
        let Some(playback) = playback.filter(|_| !ahead.is_empty()) else {
            return false;
        };
        let offset = layout.piece_offset(piece);
        let ours = playback.reaches(now, offset);
        let len = f64::from(layout.piece_len(piece));
        ahead.iter().any(|(has, heard, rate)| {
            !has.contains(piece)
                && heard
                    .reaches(offset)
                    .is_some_and(|theirs| passed_on_before(theirs, len, *rate, spare, ours))
        })
    }
}

/// Whether `len` bytes a neighbour has at `theirs` reach us, at `rate`
/// bytes per second and with `margin` to spare, before `ours`. A rate
/// decayed to almost nothing passes nothing on in time.
pub(super) fn passed_on_before(
    theirs: Instant,
    len: f64,
    rate: f64,
    margin: Duration,
    ours: Instant,
) -> bool {
    Duration::try_from_secs_f64(len / rate)
        .ok()
        .and_then(|transfer| theirs.checked_add(transfer.saturating_add(margin)))
        .is_some_and(|arrival| arrival < ours)
}

/// Rendezvous (highest-random-weight) hashing over a peer and its neighbours.
struct Ranks {
    own: u64,
    neighbours: Vec<u64>,
}

impl Ranks {
    /// Whether we rank above every neighbour for this piece.
    fn owns(&self, piece: PieceIndex) -> bool {
        let mine = rank(self.own, piece);
        self.neighbours.iter().all(|n| rank(*n, piece) < mine)
    }
}

fn id_hash(peer_id: &[u8; 20]) -> u64 {
    peer_id.chunks(8).fold(0xcbf2_9ce4_8422_2325, |h, chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        mix(h ^ u64::from_le_bytes(word))
    })
}

fn rank(id_hash: u64, piece: PieceIndex) -> u64 {
    mix(id_hash ^ u64::from(piece.get()).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
