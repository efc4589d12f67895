//! A deterministic swarm simulator.
//!
//! It drives real [`Swarm`]s exchanging real wire bytes over a simulated
//! network ([`net`]): a virtual clock advancing in fixed steps, per-peer
//! upload and download capacity, link latency, an HTTP origin with its own
//! upload capacity, peers joining over time, churn, peers that corrupt the
//! blocks they serve, and streaming viewers with a playhead that may seek
//! once. Peers announce and re-announce, and meet as the tracker introduces
//! them, through the tracker's own selection code
//! ([`chunkswarm_tracker::introductions`], or at random: [`Introductions`]).
//! Every random choice comes from the scenario's seed, so a seed replays a
//! run exactly.
//!
//! Content is generated from the piece index, so a run never holds more than
//! one copy of it however many peers there are.

mod detail;
mod flow_trace;
mod inspect;
pub mod net;
mod origin_trace;
mod playback;
mod report;
mod scenario;
mod tracker;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use chunkswarm_core::metainfo::{Info, TorrentBuilder};
use chunkswarm_core::swarm::{
    Event, HttpRequestId, Output, PeerKey, Swarm, SwarmConfig, SwarmFacts,
};
use web_time::Instant;

pub use detail::{PeerDetail, Sample};
pub use inspect::Inspect;
pub use report::{OriginFetchCounts, Report, Summary};
pub use scenario::{Params, SCENARIOS};
pub use tracker::Introductions;

use net::{Endpoint, HIGH_WATER, LOW_WATER, Link, Network};
use playback::Viewer;

/// Stream id of the peer-to-peer connection on a link; HTTP responses use
/// their request id plus one.
const PEER_STREAM: u64 = 0;

/// A small deterministic generator for the simulator's own choices.
#[derive(Debug, Clone)]
struct SimRng(u64);

impl SimRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One simulated peer.
#[derive(Debug)]
struct SimPeer {
    swarm: Option<Swarm>,
    joins_at: Duration,
    left_at: Option<Duration>,
    completed_at: Option<Duration>,
    corrupt: bool,
    /// Talks only to the origin (the HTTP-only reference viewer).
    isolated: bool,
    viewer: Option<Viewer>,
    http_bodies: BTreeMap<u64, (usize, Vec<u8>)>,
    /// When it announces to the tracker next.
    next_announce: Duration,
    /// Its playhead jumped: the next announce carries offers even at
    /// `connect_to`, as the driver's does after a seek.
    reintroduce: bool,
    reintroduced_at: Option<Duration>,
}

/// A run in progress.
#[derive(Debug)]
pub struct Simulation {
    params: Params,
    base: Instant,
    now: Duration,
    rng: SimRng,
    /// The tracker's own generator, for its introductions.
    tracker_rng: fastrand::Rng,
    info: Info,
    content: Vec<Bytes>,
    peers: Vec<SimPeer>,
    net: Network,
    connects: Vec<(Duration, usize, usize)>,
    closes: Vec<(Duration, usize, usize)>,
    http_starts: Vec<(Duration, usize, HttpRequestId, u64, u64)>,
    /// Swarm facts on their way back from the tracker.
    facts_due: Vec<(Duration, usize, SwarmFacts)>,
    bans: BTreeSet<(usize, usize)>,
    unverified_bytes_delivered: u64,
    origin_requests: u64,
    /// Whether the report carries the per-peer figures and the timeline.
    detail: bool,
    timeline: detail::Timeline,
    /// Set when every origin fetch is printed as it starts.
    origin_trace: Option<origin_trace::OriginTrace>,
    /// Set when peers' views are printed at given times.
    inspect: Option<Inspect>,
}

impl Simulation {
    /// Sets up a run: content, torrent, peers and their join times.
    pub fn new(params: Params) -> Self {
        let mut rng = SimRng(params.seed);
        let piece_length = params.piece_length;
        let pieces = params.file_bytes.div_ceil(u64::from(piece_length));
        let content: Vec<Bytes> = (0..pieces)
            .map(|i| {
                let len =
                    (params.file_bytes - i * u64::from(piece_length)).min(u64::from(piece_length));
                piece_content(params.seed, i, len as usize)
            })
            .collect();
        let info = torrent_info(&content, piece_length);
        let mut peers = Vec::new();
        for i in 0..params.peers {
            let joins_at = params
                .join_window
                .mul_f64(i as f64 / params.peers.max(1) as f64);
            let corrupt = rng.unit() < params.corrupt_fraction;
            let viewer = params.bitrate.map(|bitrate| {
                Viewer::new(
                    bitrate,
                    params.seek_fraction,
                    params.file_bytes as f64,
                    &mut rng,
                )
            });
            peers.push(SimPeer::new(joins_at, corrupt, false, viewer));
        }
        if params.http_only_viewer {
            // Joins mid-way, so it meets the origin as loaded as the viewers do.
            let joins_at = params.join_window / 2;
            let viewer = params
                .bitrate
                .map(|bitrate| Viewer::new(bitrate, 0.0, params.file_bytes as f64, &mut rng));
            peers.push(SimPeer::new(joins_at, false, true, viewer));
        }
        let mut net = Network {
            latency: params.latency,
            ..Network::default()
        };
        net.upload.insert(Endpoint::Origin, params.origin_up);
        net.download.insert(Endpoint::Origin, f64::INFINITY);
        Self {
            base: Instant::now(),
            now: Duration::ZERO,
            rng,
            tracker_rng: fastrand::Rng::with_seed(params.seed ^ 0x0074_7261_636b_6572),
            info,
            content,
            peers,
            net,
            connects: Vec::new(),
            closes: Vec::new(),
            http_starts: Vec::new(),
            facts_due: Vec::new(),
            bans: BTreeSet::new(),
            unverified_bytes_delivered: 0,
            origin_requests: 0,
            detail: false,
            timeline: detail::Timeline::default(),
            origin_trace: None,
            inspect: None,
            params,
        }
    }

    /// Makes the report carry every peer's figures and a timeline of the
    /// swarm ([`Report::by_peer`], [`Report::timeline`]).
    #[must_use]
    pub fn with_detail(mut self) -> Self {
        self.detail = true;
        self
    }

    /// Prints a JSON line on standard error for every fetch a peer sends to
    /// the origin (see `origin_trace`).
    #[must_use]
    pub fn with_origin_trace(mut self) -> Self {
        self.origin_trace = Some(origin_trace::OriginTrace::default());
        self
    }

    /// Prints, at the end of the run, the bytes every sender sent every
    /// receiver in each 10 s (see `flow_trace`).
    #[must_use]
    pub fn with_flow_trace(mut self) -> Self {
        self.net.flows = Some(flow_trace::FlowTrace::default());
        self
    }

    /// Prints the named peers' views of themselves and their neighbours at
    /// the given times (see `inspect`).
    #[must_use]
    pub fn with_inspect(mut self, inspect: Inspect) -> Self {
        self.inspect = Some(inspect);
        self
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> Report {
        let wall = std::time::Instant::now();
        while self.now < self.params.time_limit && !self.finished() {
            self.step();
        }
        let elapsed = wall.elapsed();
        if let Some(flows) = &self.net.flows {
            flows.print();
        }
        report::build(&self, elapsed)
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// Every peer that joined and stayed has completed, and no more are due.
    fn finished(&self) -> bool {
        let all_joined = self
            .peers
            .iter()
            .all(|p| p.swarm.is_some() || p.left_at.is_some());
        all_joined
            && self.now >= self.params.churn_until
            && self
                .peers
                .iter()
                .filter(|p| p.left_at.is_none())
                .all(|p| p.completed_at.is_some())
    }

    fn step(&mut self) {
        let dt = self.params.dt;
        self.now += dt;
        self.join_due();
        self.announce_due();
        self.facts_arrived();
        self.churn(dt);
        self.connect_due();
        self.close_due();
        self.start_http_due();
        let now = self.now;
        self.net.step(now, dt);
        self.sample_timeline();
        self.deliver();
        self.run_timeouts();
        self.play(dt);
        self.backpressure();
        self.inspect_due();
    }

    fn join_due(&mut self) {
        for i in 0..self.peers.len() {
            let peer = &self.peers[i];
            if peer.swarm.is_some() || peer.left_at.is_some() || peer.joins_at > self.now {
                continue;
            }
            self.join(i);
        }
    }

    fn join(&mut self, i: usize) {
        let mut config: SwarmConfig = self.params.swarm.clone();
        config.peer_id = peer_id(i);
        config.rng_seed = self.params.seed ^ (i as u64).wrapping_mul(0x9E37_79B9);
        let pieces = self.info.layout().piece_count();
        let have = chunkswarm_core::piece_map::Bitfield::new(pieces);
        let now = self.instant();
        let mut swarm = Swarm::new(now, self.info.clone(), have, config);
        if let Some(viewer) = &self.peers[i].viewer {
            swarm.set_playback(now, Some(viewer.playback()));
        }
        let peer = &mut self.peers[i];
        peer.swarm = Some(swarm);
        peer.joins_at = self.now;
        self.net
            .upload
            .insert(Endpoint::Peer(i), self.params.peer_up);
        self.net
            .download
            .insert(Endpoint::Peer(i), self.params.peer_down);
        if !peer.isolated {
            self.announce(i);
        }
        self.drain(i);
    }

    fn is_present(&self, i: usize) -> bool {
        self.peers[i].swarm.is_some() && self.peers[i].left_at.is_none()
    }

    /// Peers leave at the scenario's churn rate and are replaced by newcomers.
    fn churn(&mut self, dt: Duration) {
        if self.params.churn_per_minute <= 0.0 || self.now >= self.params.churn_until {
            return;
        }
        let p = self.params.churn_per_minute * dt.as_secs_f64() / 60.0;
        for i in 0..self.peers.len() {
            if self.is_present(i) && !self.peers[i].isolated && self.rng.unit() < p {
                self.leave(i);
                let corrupt = self.rng.unit() < self.params.corrupt_fraction;
                let total = self.params.file_bytes as f64;
                let seek_fraction = self.params.seek_fraction;
                let viewer = self
                    .params
                    .bitrate
                    .map(|bitrate| Viewer::new(bitrate, seek_fraction, total, &mut self.rng));
                let newcomer = SimPeer::new(self.now, corrupt, false, viewer);
                self.peers.push(newcomer);
            }
        }
    }

    fn leave(&mut self, i: usize) {
        self.peers[i].left_at = Some(self.now);
        self.peers[i].swarm = None;
        let links: Vec<(Endpoint, Endpoint, u64)> = self
            .net
            .links
            .keys()
            .filter(|(a, b, _)| *a == Endpoint::Peer(i) || *b == Endpoint::Peer(i))
            .copied()
            .collect();
        for key in links {
            self.net.links.remove(&key);
            if let (Endpoint::Peer(a), Endpoint::Peer(b), PEER_STREAM) = key {
                let other = if a == i { b } else { a };
                if self.is_present(other) && a == i {
                    self.closes.push((self.now + self.params.latency, i, other));
                }
            }
        }
    }

    fn connect_due(&mut self) {
        let due: Vec<(Duration, usize, usize)> = self
            .connects
            .iter()
            .filter(|(at, _, _)| *at <= self.now)
            .copied()
            .collect();
        self.connects.retain(|(at, _, _)| *at > self.now);
        for (_, a, b) in due {
            let key = (Endpoint::Peer(a), Endpoint::Peer(b), PEER_STREAM);
            if !self.is_present(a) || !self.is_present(b) || self.net.links.contains_key(&key) {
                continue;
            }
            self.net.links.insert(key, Link::default());
            self.net.links.insert(
                (Endpoint::Peer(b), Endpoint::Peer(a), PEER_STREAM),
                Link::default(),
            );
            let now = self.instant();
            for (x, y) in [(a, b), (b, a)] {
                if let Some(swarm) = self.peers[x].swarm.as_mut() {
                    swarm.handle_peer_connected(now, PeerKey(y as u64));
                }
                self.drain(x);
            }
        }
    }

    fn close_due(&mut self) {
        let due: Vec<(Duration, usize, usize)> = self
            .closes
            .iter()
            .filter(|(at, _, _)| *at <= self.now)
            .copied()
            .collect();
        self.closes.retain(|(at, _, _)| *at > self.now);
        let now = self.instant();
        for (_, from, to) in due {
            if let Some(swarm) = self.peers[to].swarm.as_mut() {
                swarm.handle_peer_closed(now, PeerKey(from as u64));
                self.drain(to);
            }
        }
    }

    fn start_http_due(&mut self) {
        let due: Vec<(Duration, usize, HttpRequestId, u64, u64)> = self
            .http_starts
            .iter()
            .filter(|s| s.0 <= self.now)
            .copied()
            .collect();
        self.http_starts.retain(|s| s.0 > self.now);
        for (_, i, id, start, end) in due {
            if !self.is_present(i) {
                continue;
            }
            let body = self.content_range(start, end);
            let expected = body.len();
            let mut link = Link::default();
            link.push(body);
            self.net
                .links
                .insert((Endpoint::Origin, Endpoint::Peer(i), id.0 + 1), link);
            self.peers[i]
                .http_bodies
                .insert(id.0, (expected, Vec::with_capacity(expected)));
        }
    }

    fn content_range(&self, start: u64, end: u64) -> Bytes {
        let piece_length = u64::from(self.params.piece_length);
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut offset = start;
        while offset < end {
            let piece = (offset / piece_length) as usize;
            let within = (offset % piece_length) as usize;
            let data = &self.content[piece];
            let take = ((end - offset) as usize).min(data.len() - within);
            out.extend_from_slice(&data[within..within + take]);
            offset += take as u64;
        }
        Bytes::from(out)
    }

    /// Hands every byte that finished propagating to its receiver.
    fn deliver(&mut self) {
        let now = self.now;
        let mut arrivals: Vec<((Endpoint, Endpoint, u64), Vec<Bytes>)> = Vec::new();
        for (key, link) in self.net.links.iter_mut() {
            let chunks = link.arrived(now);
            if !chunks.is_empty() {
                arrivals.push((*key, chunks));
            }
        }
        let instant = self.instant();
        for ((from, to, stream), chunks) in arrivals {
            let Endpoint::Peer(to) = to else { continue };
            match from {
                Endpoint::Peer(from) => {
                    for chunk in chunks {
                        if let Some(swarm) = self.peers[to].swarm.as_mut() {
                            swarm.handle_peer_data(instant, PeerKey(from as u64), &chunk);
                        }
                    }
                    self.drain(to);
                }
                Endpoint::Origin => self.http_arrived(to, stream - 1, chunks),
            }
        }
    }

    fn http_arrived(&mut self, i: usize, id: u64, chunks: Vec<Bytes>) {
        let Some((expected, body)) = self.peers[i].http_bodies.get_mut(&id) else {
            return;
        };
        chunks.iter().for_each(|c| body.extend_from_slice(c));
        if body.len() < *expected {
            return;
        }
        let body = Bytes::from(std::mem::take(body));
        self.peers[i].http_bodies.remove(&id);
        self.net
            .links
            .remove(&(Endpoint::Origin, Endpoint::Peer(i), id + 1));
        let now = self.instant();
        if let Some(swarm) = self.peers[i].swarm.as_mut() {
            swarm.handle_http_response(now, HttpRequestId(id), Ok(body));
        }
        self.drain(i);
    }

    fn run_timeouts(&mut self) {
        let now = self.instant();
        for i in 0..self.peers.len() {
            let Some(swarm) = self.peers[i].swarm.as_mut() else {
                continue;
            };
            if swarm.poll_timeout().is_some_and(|t| t <= now) {
                swarm.handle_timeout(now);
                self.drain(i);
            }
        }
    }

    /// Tells senders when a link fills past the high-water mark or drains.
    fn backpressure(&mut self) {
        let now = self.instant();
        let mut changes = Vec::new();
        for ((from, to, stream), link) in self.net.links.iter_mut() {
            let (Endpoint::Peer(from), Endpoint::Peer(to), PEER_STREAM) = (*from, *to, *stream)
            else {
                continue;
            };
            if !link.blocked && link.queued() > HIGH_WATER {
                link.blocked = true;
                changes.push((from, to, false));
            } else if link.blocked && link.queued() < LOW_WATER {
                link.blocked = false;
                changes.push((from, to, true));
            }
        }
        for (from, to, writable) in changes {
            if let Some(swarm) = self.peers[from].swarm.as_mut() {
                swarm.handle_peer_writable(now, PeerKey(to as u64), writable);
            }
            self.drain(from);
        }
    }

    /// Carries out a peer's outputs.
    fn drain(&mut self, i: usize) {
        let now = self.instant();
        loop {
            let Some(output) = self.peers[i].swarm.as_mut().and_then(Swarm::poll_output) else {
                return;
            };
            match output {
                Output::Send { peer, data } => {
                    let data = if self.peers[i].corrupt {
                        corrupt_block(data)
                    } else {
                        data
                    };
                    let key = (
                        Endpoint::Peer(i),
                        Endpoint::Peer(peer.0 as usize),
                        PEER_STREAM,
                    );
                    if let Some(link) = self.net.links.get_mut(&key) {
                        link.push(data);
                    }
                }
                Output::Close { peer, .. } => {
                    let j = peer.0 as usize;
                    let there = (Endpoint::Peer(i), Endpoint::Peer(j), PEER_STREAM);
                    let back = (Endpoint::Peer(j), Endpoint::Peer(i), PEER_STREAM);
                    if self.net.links.remove(&there).is_some() {
                        self.net.links.remove(&back);
                        self.closes.push((self.now + self.params.latency, i, j));
                    }
                }
                Output::HttpFetch { id, range } => {
                    self.origin_requests += 1;
                    // The request travels to the origin and the first byte back.
                    let at = self.now + self.params.latency * 2;
                    self.http_starts.push((at, i, id, range.start, range.end));
                    self.trace_origin_fetch(i, range.start);
                }
                Output::HttpCancel { id } => {
                    self.http_starts.retain(|s| !(s.1 == i && s.2 == id));
                    self.net
                        .links
                        .remove(&(Endpoint::Origin, Endpoint::Peer(i), id.0 + 1));
                    self.peers[i].http_bodies.remove(&id.0);
                }
                Output::StorePiece { piece, data } => {
                    if data != self.content[piece.as_usize()] {
                        self.unverified_bytes_delivered += data.len() as u64;
                    }
                }
                Output::ReadPiece { piece } => {
                    let data = self.content[piece.as_usize()].clone();
                    if let Some(swarm) = self.peers[i].swarm.as_mut() {
                        swarm.handle_piece_read(now, piece, Some(data));
                    }
                }
                Output::Event(Event::PeerBanned { peer, .. }) => {
                    self.bans.insert((i, peer.0 as usize));
                }
                Output::Event(Event::Completed) => {
                    if self.peers[i].completed_at.is_none() {
                        self.peers[i].completed_at = Some(self.now);
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
}

impl SimPeer {
    fn new(joins_at: Duration, corrupt: bool, isolated: bool, viewer: Option<Viewer>) -> Self {
        Self {
            swarm: None,
            joins_at,
            left_at: None,
            completed_at: None,
            corrupt,
            isolated,
            viewer,
            http_bodies: BTreeMap::new(),
            next_announce: Duration::ZERO,
            reintroduce: false,
            reintroduced_at: None,
        }
    }
}

/// A corrupt peer flips the payload of every `piece` message it sends.
fn corrupt_block(data: Bytes) -> Bytes {
    const HEADER: usize = 4 + 1 + 8;
    let is_piece = data.len() > HEADER
        && data[4] == 7
        && u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize == data.len() - 4;
    if !is_piece {
        return data;
    }
    let mut bad = data.to_vec();
    bad[HEADER..].iter_mut().for_each(|b| *b ^= 0x5A);
    Bytes::from(bad)
}

fn peer_id(i: usize) -> [u8; 20] {
    let mut id = *b"-CS0001-000000000000";
    id[8..20].copy_from_slice(format!("{i:012}").as_bytes());
    id
}

/// Deterministic, incompressible bytes of one piece.
fn piece_content(seed: u64, piece: u64, len: usize) -> Bytes {
    let mut rng = SimRng(seed ^ piece.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    data.truncate(len);
    Bytes::from(data)
}

fn torrent_info(content: &[Bytes], piece_length: u32) -> Info {
    let reader = ContentReader {
        pieces: content,
        piece: 0,
        offset: 0,
    };
    match TorrentBuilder::new()
        .piece_length(piece_length)
        .build_from_reader("sim.bin", reader)
    {
        Ok(metainfo) => metainfo.info().clone(),
        Err(e) => panic!("the simulated content is a valid torrent: {e}"),
    }
}

/// Reads the generated pieces back to back.
struct ContentReader<'a> {
    pieces: &'a [Bytes],
    piece: usize,
    offset: usize,
}

impl std::io::Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(piece) = self.pieces.get(self.piece) else {
            return Ok(0);
        };
        let n = buf.len().min(piece.len() - self.offset);
        buf[..n].copy_from_slice(&piece[self.offset..self.offset + n]);
        self.offset += n;
        if self.offset == piece.len() {
            self.piece += 1;
            self.offset = 0;
        }
        Ok(n)
    }
}
