//! The sans-IO swarm engine: one [`Swarm`] per torrent.
//!
//! A `Swarm` holds all download and upload state of one torrent and does no
//! I/O: no sockets, no tasks, no clock, no randomness but a seeded generator.
//! Its adapter (native, browser, or the simulator) moves bytes and time in
//! and carries its outputs out.
//!
//! # Call order
//!
//! 1. Create it with [`Swarm::new`], passing the current time.
//! 2. Feed every event as it happens, each with the current time:
//!    [`handle_peer_connected`](Swarm::handle_peer_connected) (or
//!    [`admit_peer`](Swarm::admit_peer) for a connection handed over by a
//!    metadata fetch),
//!    [`handle_peer_data`](Swarm::handle_peer_data),
//!    [`handle_peer_writable`](Swarm::handle_peer_writable),
//!    [`handle_peer_closed`](Swarm::handle_peer_closed),
//!    [`handle_http_response`](Swarm::handle_http_response),
//!    [`handle_piece_read`](Swarm::handle_piece_read),
//!    [`handle_swarm_facts`](Swarm::handle_swarm_facts), and commands such as
//!    [`set_playback`](Swarm::set_playback) or [`pause`](Swarm::pause).
//! 3. After each call, drain [`poll_output`](Swarm::poll_output) until it
//!    returns `None`, carrying out every [`Output`] in order.
//! 4. Then ask [`poll_timeout`](Swarm::poll_timeout) for the next deadline;
//!    when it passes (or any input arrives first), call
//!    [`handle_timeout`](Swarm::handle_timeout) and go back to 3.
//!
//! Outputs are only produced by these calls, so an adapter that follows the
//! order never misses one. Network faults never surface as errors: they
//! become retries and [`Event`]s.

mod claims;
mod config;
mod download;
mod facts;
mod handover;
mod http;
mod metadata;
mod output;
mod peer;
mod playhead;
mod upload;
mod verify;
mod wire_in;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use web_time::Instant;

pub use config::{
    HttpConfig, OriginBudget, StartupTrust, StreamingConfig, SwarmConfig, WindowDuplicates,
};
pub use facts::{MAX_FACT_PIECES, SwarmFacts};
pub use handover::{FirstAvailability, HandshakenPeer, PeerAvailability, PeerHandover};
pub use output::{
    BanReason, CloseReason, Event, HttpRequestId, OriginFetches, Output, PeerKey, PeerSnapshot,
    PieceState, ProtocolViolation, Source, Stats,
};

use crate::driver::HttpError;
use crate::layout::{Layout, PieceIndex};
use crate::metainfo::Info;
use crate::pick::{PiecePicker, PriorityPicker};
use crate::piece_map::{Availability, Bitfield};
use crate::rate::{BusyRate, RateEstimator};
use crate::retry::{RetryPolicy, StandardRetry};
use crate::rng::SeededRng;
use crate::wire::{Handshake, HandshakeDecoder, Message, Reserved};

use claims::Claims;
use download::PartialPiece;
use facts::Facts;
use http::HttpState;
use peer::Peer;
use upload::UploadState;
use verify::Suspect;

/// Where playback is, for the streaming strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    /// Byte offset of the playhead in the content.
    pub position: u64,
    /// Content bytes consumed per second of playback.
    pub bitrate: u64,
}

impl Playback {
    /// When playback reaches byte `offset`, as of `now` (at once if past it).
    fn reaches(&self, now: Instant, offset: u64) -> Instant {
        let ahead = offset.saturating_sub(self.position) as f64 / self.bitrate.max(1) as f64;
        now + Duration::from_secs_f64(ahead.min(1e9))
    }
}

/// One torrent's download and upload, driven by its adapter. See the
/// [module docs](self) for the call order.
pub struct Swarm {
    info: Info,
    layout: Layout,
    config: SwarmConfig,
    retry: Box<dyn RetryPolicy + Send>,
    picker: Box<dyn PiecePicker + Send>,
    have: Bitfield,
    availability: Availability,
    peers: BTreeMap<PeerKey, Peer>,
    banned_ids: BTreeSet<[u8; 20]>,
    partials: BTreeMap<PieceIndex, PartialPiece>,
    /// Failed peer attempts per piece (timeouts, rejects, hash failures).
    attempts: BTreeMap<PieceIndex, u32>,
    suspects: BTreeMap<PieceIndex, Vec<Suspect>>,
    http: HttpState,
    claims: Claims,
    facts: Facts,
    upload: UploadState,
    playback: Option<Playback>,
    /// The playhead we last told our neighbours, and when.
    told_playhead: Option<(crate::wire::extension::Playhead, Instant)>,
    outputs: VecDeque<Output>,
    rng: SeededRng,
    stats: Stats,
    p2p_rate: RateEstimator,
    /// Peer download rate over the time requests were outstanding: what
    /// peers deliver when asked, for deciding what they will deliver in time.
    p2p_capacity: BusyRate,
    http_rate: RateEstimator,
    upload_rate: RateEstimator,
    next_tick: Instant,
    paused: bool,
    completed: bool,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("info_hash", &self.info.info_hash())
            .field("have", &self.have)
            .field("peers", &self.peers.len())
            .field("partials", &self.partials.len())
            .finish_non_exhaustive()
    }
}

impl Swarm {
    /// A swarm for the torrent described by `info`, holding the verified
    /// pieces in `have` (pass `Bitfield::new(pieces)` to start empty, or
    /// `Bitfield::full(pieces)` to seed), with the default picker for
    /// `config.strategy` and the default retry policy.
    pub fn new(now: Instant, info: Info, have: Bitfield, config: SwarmConfig) -> Self {
        let layout = info.layout();
        let picker = PriorityPicker::new(layout.piece_count(), config.strategy, config.rng_seed);
        Self::with_policies(
            now,
            info,
            have,
            config,
            Box::new(picker),
            Box::new(StandardRetry::default()),
        )
    }

    /// A swarm with a custom piece picker and retry policy.
    pub fn with_policies(
        now: Instant,
        info: Info,
        have: Bitfield,
        config: SwarmConfig,
        mut picker: Box<dyn PiecePicker + Send>,
        retry: Box<dyn RetryPolicy + Send>,
    ) -> Self {
        let layout = info.layout();
        let have = if have.len() == layout.piece_count() {
            have
        } else {
            Bitfield::new(layout.piece_count())
        };
        for piece in have.iter_ones() {
            picker.set_wanted(piece, false);
        }
        let mut stats = Stats {
            total_bytes: layout.total_length(),
            pieces_total: layout.piece_count(),
            ..Stats::default()
        };
        for piece in have.iter_ones() {
            stats.verified_bytes += u64::from(layout.piece_len(piece));
            stats.pieces_verified += 1;
        }
        let completed = have.is_full();
        let window = Duration::from_secs(3);
        Self {
            rng: SeededRng::new(config.rng_seed ^ 0x5357_4152_4d00_0000),
            http: HttpState::new(now, &config, layout.piece_length()),
            upload: UploadState::new(now, &config),
            claims: Claims::default(),
            facts: Facts::default(),
            availability: Availability::new(layout.piece_count()),
            info,
            layout,
            retry,
            picker,
            have,
            peers: BTreeMap::new(),
            banned_ids: BTreeSet::new(),
            partials: BTreeMap::new(),
            attempts: BTreeMap::new(),
            suspects: BTreeMap::new(),
            playback: None,
            told_playhead: None,
            outputs: VecDeque::new(),
            stats,
            p2p_rate: RateEstimator::new(window),
            p2p_capacity: BusyRate::new(window),
            http_rate: RateEstimator::new(window),
            upload_rate: RateEstimator::new(window),
            next_tick: now,
            paused: false,
            completed,
            config,
        }
    }

    /// The torrent's info dictionary.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The verified pieces we hold.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.completed
    }

    /// Counters and rates as of `now`.
    pub fn stats(&self, now: Instant) -> Stats {
        Stats {
            p2p_rate: self.p2p_rate.rate(now),
            http_rate: self.http_rate.rate(now),
            upload_rate: self.upload_rate.rate(now),
            peers: self.peers.values().filter(|p| p.is_active()).count(),
            ..self.stats
        }
    }

    /// Every connection as of `now`, for a UI's peer list.
    pub fn peers(&self, now: Instant) -> Vec<PeerSnapshot> {
        let pieces = self.layout.piece_count();
        self.peers
            .iter()
            .map(|(key, p)| PeerSnapshot {
                peer: *key,
                peer_id: p.peer_id,
                pieces: if p.is_seed {
                    pieces
                } else {
                    p.has.count_ones()
                },
                is_seed: p.is_seed,
                am_choking: p.am_choking,
                am_interested: p.am_interested,
                peer_choking: p.peer_choking,
                peer_interested: p.peer_interested,
                requests_out: p.outstanding.len(),
                requests_in: p.incoming.len(),
                playhead: self.neighbour_position(now, *key),
                downloaded: p.downloaded,
                uploaded: p.uploaded,
                download_rate: p.download.rate(now),
                upload_rate: p.upload.rate(now),
            })
            .collect()
    }

    /// How many connected peers hold the piece.
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        self.availability.count(piece)
    }

    /// The next output to carry out, or `None` when there is nothing to do
    /// until the next input or [`poll_timeout`](Self::poll_timeout).
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if
    /// ever: `None` once the download is complete and no peer is connected.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.completed && self.peers.is_empty() {
            return None;
        }
        let upload = self.upload.ready_at();
        Some(upload.map_or(self.next_tick, |at| at.min(self.next_tick)))
    }

    /// Time passed: runs timeouts, choking, HTTP decisions and progress.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_tick {
            self.next_tick = now + self.config.tick;
            self.check_peer_timeouts(now);
            self.check_http_timeouts(now);
            self.maybe_rechoke(now);
            self.send_keepalives(now);
            self.withdraw_past_rescue(now);
            self.fill_all_requests(now);
            self.maybe_fetch_http(now);
            self.check_sources(now);
            if !self.completed || !self.peers.is_empty() {
                let stats = self.stats(now);
                self.emit(Event::Progress(stats));
            }
        }
        self.serve_uploads(now);
    }

    /// A new connection is open; the swarm sends its handshake at once.
    /// Reusing the key of a connection the swarm still knows replaces it.
    pub fn handle_peer_connected(&mut self, now: Instant, peer: PeerKey) {
        if self.peers.contains_key(&peer) {
            self.drop_peer(now, peer, CloseReason::Duplicate, true);
        }
        let limits = self.decoder_limits();
        let state = Peer::new(
            now,
            HandshakeDecoder::new(limits),
            self.layout.piece_count(),
        );
        self.peers.insert(peer, state);
        let handshake = Handshake {
            reserved: Reserved::NONE.with_fast(true).with_extended(true),
            info_hash: *self.info.info_hash().as_bytes(),
            peer_id: self.config.peer_id,
        };
        let mut data = BytesMut::new();
        handshake.encode(&mut data);
        self.send_raw(now, peer, data.freeze());
    }

    /// Bytes arrived from a peer, split anywhere.
    pub fn handle_peer_data(&mut self, now: Instant, peer: PeerKey, bytes: &[u8]) {
        self.receive(now, peer, bytes);
        self.serve_uploads(now);
    }

    /// The peer's channel went above (`false`) or back below (`true`) the
    /// adapter's buffering high-water mark. Blocks are only sent while writable.
    pub fn handle_peer_writable(&mut self, now: Instant, peer: PeerKey, writable: bool) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.blocked = !writable;
        }
        if writable {
            self.serve_uploads(now);
        }
    }

    /// The connection closed (or failed); its requests go to other sources.
    pub fn handle_peer_closed(&mut self, now: Instant, peer: PeerKey) {
        self.drop_peer(now, peer, CloseReason::Remote, false);
    }

    /// The answer to an [`Output::HttpFetch`]: the body, or why it failed.
    pub fn handle_http_response(
        &mut self,
        now: Instant,
        id: HttpRequestId,
        result: Result<Bytes, HttpError>,
    ) {
        self.http_response(now, id, result);
        self.maybe_fetch_http(now);
    }

    /// The answer to an [`Output::ReadPiece`]: the piece's bytes, or `None`
    /// if the store could not read it (the piece is then fetched again).
    pub fn handle_piece_read(&mut self, now: Instant, piece: PieceIndex, data: Option<Bytes>) {
        self.piece_read(now, piece, data);
        self.serve_uploads(now);
    }

    /// Moves the playhead (streaming) or stops streaming with `None`. Seeking
    /// moves the playback window at once.
    pub fn set_playback(&mut self, now: Instant, playback: Option<Playback>) {
        self.playback = playback;
        self.maybe_report_playhead(now);
        self.picker.set_window(self.window());
        self.fill_all_requests(now);
        self.maybe_fetch_http(now);
    }

    /// The piece the playhead is in, while the content plays as it
    /// downloads (see [`set_playback`](Self::set_playback)).
    pub fn playback_piece(&self) -> Option<PieceIndex> {
        self.layout.piece_at_offset(self.playback?.position)
    }

    /// Stops requesting new data (uploads continue).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Resumes requesting after [`pause`](Self::pause).
    pub fn resume(&mut self, now: Instant) {
        self.paused = false;
        self.fill_all_requests(now);
        self.maybe_fetch_http(now);
    }

    /// Changes the upload limit (bytes per second), or removes it with `None`.
    pub fn set_upload_rate_limit(&mut self, limit: Option<u64>) {
        self.config.upload_rate_limit = limit;
        self.upload.set_limit(limit);
    }

    /// The playback window in pieces, empty when not streaming.
    fn window(&self) -> Range<u32> {
        let Some(playback) = self.playback else {
            return 0..0;
        };
        let Some(first) = self.layout.piece_at_offset(playback.position) else {
            return 0..0;
        };
        let ahead = playback
            .bitrate
            .saturating_mul(self.config.streaming.window.as_secs().max(1));
        let end = playback
            .position
            .saturating_add(ahead)
            .min(self.layout.total_length() - 1);
        let last = self.layout.piece_at_offset(end).unwrap_or(first);
        first.get()..last.get() + 1
    }

    /// Pieces at or beyond this index are not fetched from the origin yet
    /// (nor from peers, unless the viewer fetches ahead): while streaming,
    /// those past the window, which viewers ahead of us will hold by then.
    fn reach(&self) -> u32 {
        let window = self.window();
        if window.is_empty() {
            u32::MAX
        } else {
            window.end
        }
    }

    /// Pieces at or beyond this index are not asked of peers yet: those
    /// past the window, unless the link has room to fetch ahead (see
    /// [`StreamingConfig::fetch_ahead_headroom`]).
    fn peer_reach(&self, now: Instant) -> u32 {
        if self.fetches_ahead(now) {
            u32::MAX
        } else {
            self.reach()
        }
    }

    /// A viewer whose link has shown room for pieces past its window.
    fn fetches_ahead(&self, now: Instant) -> bool {
        let (Some(playback), Some(headroom)) =
            (self.playback, self.config.streaming.fetch_ahead_headroom)
        else {
            return false;
        };
        let link = self.http.best_alone_rate.max(self.p2p_capacity.rate(now));
        link >= headroom * playback.bitrate as f64
    }

    /// While streaming, the pieces that requests are limited to, so that
    /// playback gets the whole link when it needs it: the playhead piece
    /// until it is verified (startup), then the window while one of its
    /// pieces is due within the rescue margin, cut short at a piece HTTP is
    /// rescuing unless that rescue is already late. `None` when nothing is
    /// urgent.
    fn focus(&self, now: Instant) -> Option<Range<u32>> {
        let window = self.window();
        let playhead = self
            .layout
            .piece(window.start)
            .filter(|_| !window.is_empty())?;
        // Startup: the first piece gets the whole link. (Later, a playhead
        // piece not held is a stall or a seek, handled as a late rescue.)
        if !self.have.contains(playhead) && self.have.is_clear() {
            return Some(window.start..window.start + 1);
        }
        let margin = self.config.streaming.rescue_margin;
        // Due within the time a rescue of it would take.
        let urgent = window
            .clone()
            .filter_map(|i| self.layout.piece(i))
            .any(|p| {
                !self.have.contains(p)
                    && self.deadline(now, p).is_some_and(|d| {
                        let lead = self.rescue_lead(self.missing_bytes(p));
                        d.saturating_duration_since(now).as_secs_f64() < lead
                    })
            });
        if !urgent {
            return None;
        }
        // While HTTP rescues a piece, peers only finish the pieces before it:
        // later ones would take the link from the rescue and make it late.
        // Not when that would not speed the rescue: playback has waited on it
        // for the rescue margin (the origin is slower than playback), or the
        // origin rather than our link limits it (peers deliver more than
        // twice as fast), or peers were never asked and so never measured.
        // Then what peers bring meanwhile is not rescued next.
        let origin_limits = self
            .http
            .origin_rate
            .is_some_and(|origin| 2.0 * origin < self.p2p_capacity.rate(now));
        let stand_aside = self.p2p_capacity.is_measured() && !origin_limits;
        let end = match self.http.rescuing() {
            Some(piece) if stand_aside && !self.rescue_overdue(now, piece, margin) => {
                piece.get() + 1
            }
            _ => window.end,
        };
        Some(window.start..end.clamp(window.start + 1, window.end))
    }

    /// Playback has been waiting on the HTTP rescue of `piece` for longer
    /// than `margin`: the piece is at the playhead and was asked for before.
    fn rescue_overdue(&self, now: Instant, piece: PieceIndex, margin: Duration) -> bool {
        let waiting = self.deadline(now, piece).is_some_and(|d| d <= now);
        waiting
            && self
                .http
                .rescue_started(piece)
                .is_some_and(|at| now.saturating_duration_since(at) > margin)
    }

    /// When the piece must be verified for playback to continue, if streaming.
    fn deadline(&self, now: Instant, piece: PieceIndex) -> Option<Instant> {
        let playback = self.playback?;
        Some(playback.reaches(now, self.layout.piece_offset(piece)))
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn send_raw(&mut self, now: Instant, peer: PeerKey, data: Bytes) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.last_sent = now;
            self.outputs.push_back(Output::Send { peer, data });
        }
    }

    fn send(&mut self, now: Instant, peer: PeerKey, messages: &[Message]) {
        if messages.is_empty() {
            return;
        }
        let mut data = BytesMut::with_capacity(messages.iter().map(Message::encoded_len).sum());
        for message in messages {
            message.encode(&mut data);
        }
        self.send_raw(now, peer, data.freeze());
    }

    /// Forgets a peer: its availability, requests and uploads. `notify`
    /// emits a [`Output::Close`] for connections the swarm closes itself.
    fn drop_peer(&mut self, now: Instant, key: PeerKey, reason: CloseReason, notify: bool) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        if peer.is_active() {
            if peer.is_seed {
                self.availability.remove_seed();
            } else {
                for piece in peer.has.iter_ones() {
                    self.availability.remove_have(piece);
                    self.picker
                        .availability_changed(piece, self.partial_count(piece));
                }
            }
        }
        for outstanding in &peer.outstanding {
            self.release_block(key, outstanding.block);
        }
        self.forget_contributions(key, reason == CloseReason::Banned);
        if self.peers.values().all(|p| !p.is_active()) {
            self.http.no_peers_since(now);
        }
        if notify {
            self.outputs.push_back(Output::Close {
                peer: key,
                reason: reason.clone(),
            });
        }
        if peer.peer_id.is_some() {
            self.emit(Event::PeerDisconnected { peer: key, reason });
        }
        self.upload.forget(key);
        self.fill_all_requests(now);
        self.maybe_fetch_http(now);
    }

    /// The per-piece count that the picker orders by (seeds excluded).
    fn partial_count(&self, piece: PieceIndex) -> u32 {
        self.availability.count(piece) - self.availability.seeds()
    }

    fn send_keepalives(&mut self, now: Instant) {
        let idle_limit = self.config.peer_idle_timeout;
        let silent: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_received) > idle_limit)
            .map(|(k, _)| *k)
            .collect();
        for key in silent {
            self.drop_peer(now, key, CloseReason::Unresponsive, true);
        }
        let quiet: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.is_active()
                    && now.saturating_duration_since(p.last_sent) >= self.config.keepalive_interval
            })
            .map(|(k, _)| *k)
            .collect();
        for key in quiet {
            self.send(now, key, &[Message::KeepAlive]);
        }
    }
}
