//! How a swarm behaves: limits, upload policy, HTTP use, streaming.

use std::time::Duration;

use crate::pick::Strategy;

/// How much the HTTP origin may be used beyond what the rules require.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum OriginBudget {
    /// No limit beyond the in-flight cap.
    #[default]
    Unlimited,
    /// At most this many origin bytes per second, playback rescues included
    /// (a token bucket with a burst of two pieces).
    MaxBytesPerSecond(u64),
    /// Keep the share of bytes received from peers at or above this fraction
    /// (0.0–1.0). Playback rescues and pieces no peer can supply may exceed it.
    TargetP2pShare(f64),
}

/// When and how the HTTP web seed is used.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Whether the web seed may be used. Under the [driver](crate::driver)
    /// a torrent without a web seed has it off whatever this says; with
    /// one, `false` leaves it unused.
    pub enabled: bool,
    /// HTTP range requests in flight at once.
    pub max_in_flight: usize,
    /// The spending limit.
    pub budget: OriginBudget,
    /// Fetch the first wanted piece (the playhead's when streaming) from HTTP
    /// at once, for a fast start.
    pub first_piece_from_http: bool,
    /// When fewer block requests than this are outstanding to peers, the
    /// download is starving (see `starving_fallback`).
    pub starving_below_blocks: u32,
    /// How long after start, or after the last peer left, before pieces that
    /// no peer holds are fetched over HTTP: time for peers to arrive.
    pub patience: Duration,
    /// How long the peer pipeline must starve before HTTP also takes unheld
    /// pieces that a neighbour ranks higher for (and so should fetch itself),
    /// or any piece when no peer will serve us.
    pub starving_fallback: Duration,
    /// How long a neighbour's `cs_origin` claim keeps us from fetching the
    /// same unheld piece from the origin (see
    /// [`wire::extension`](crate::wire::extension)). Zero turns claims off:
    /// none are offered, sent or heeded.
    pub claim_ttl: Duration,
    /// Answers in a row (with no success between) saying that asking again
    /// cannot help ([`HttpError::is_permanent`](crate::driver::HttpError::is_permanent):
    /// 404, 410, ...) after which the web seed counts as gone for this
    /// torrent ([`Event::OriginGone`](super::Event::OriginGone)) and is asked
    /// no more.
    pub gone_after: u32,
    /// Whether the tracker's swarm facts steer the origin (see
    /// [`Swarm::handle_swarm_facts`](super::Swarm::handle_swarm_facts)): a
    /// piece nobody holds that the tracker names us for is fetched at once
    /// (within the playback window, after any fast start or rescue), and
    /// pieces held elsewhere or left to another member are not fetched for
    /// want of a neighbour holding them. Off by default, since the simulator
    /// shows no saving: `streaming` takes 6.38 copies of the file from the
    /// origin with it against 6.32 without (seeds 1-12, with stalls of
    /// 0.18-0.85 s in three seeds), `vod` 11.77, 8.26 and 12.10 against
    /// 11.00, 8.71 and 12.51 (seeds 1, 2, 5, before viewers left unheld
    /// pieces alone while the origin is overloaded), and `flash-crowd` 1.15 against
    /// 1.02 (for a p95 completion of 1.11-1.12 rather than 1.13 times the
    /// fluid bound).
    pub use_swarm_facts: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_in_flight: 2,
            budget: OriginBudget::Unlimited,
            first_piece_from_http: false,
            starving_below_blocks: 16,
            patience: Duration::from_secs(2),
            starving_fallback: Duration::from_secs(10),
            claim_ttl: Duration::from_secs(30),
            gone_after: 3,
            use_swarm_facts: false,
        }
    }
}

/// The playback window used by the streaming strategy, and when the origin
/// steps in for peers.
///
/// A window piece is rescued from the origin (racing the peers) once peers,
/// at the rate they deliver when asked, would bring it later than the moment
/// a rescue must start: its deadline minus the origin's time for its missing
/// bytes (measured on the origin's fetches so far) minus `rescue_margin`.
/// A rescue that the origin will bring only after the deadline (a slow
/// origin) is raced by neighbours holding the piece; the first source to
/// bring every block wins.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingConfig {
    /// Seconds of content ahead of the playhead that are fetched strictly in order.
    pub window: Duration,
    /// Safety added to the origin's time when deciding how early a rescue
    /// must start.
    pub rescue_margin: Duration,
    /// The origin's time for a whole piece until a fetch has measured it.
    pub origin_piece_time: Duration,
    /// When serving neighbours: blocks a neighbour's playback needs within
    /// this time go out before any others (neighbours tell us their
    /// playhead over `cs_playhead`).
    pub serve_first_within: Duration,
    /// Which blocks are asked of a second peer while the window holds the
    /// rest of the file back (every block requested is then the normal
    /// state, not the end of the download).
    pub window_duplicates: WindowDuplicates,
    /// While we play, how many playing neighbours we send blocks to at
    /// once: those whose playback needs them soonest (within
    /// `serve_first_within`), or else those playing furthest ahead, whose
    /// missing pieces are the newest in the swarm and have the fewest other
    /// holders. Blocks handed to a connection wait in its send buffer, and
    /// the network shares the uplink evenly among busy connections whatever
    /// order they were queued in, so every further stream takes a share
    /// from the one that needs it most. Neighbours that do not play are
    /// served beside them.
    ///
    /// In the simulator, one stream rather than one per unchoked neighbour
    /// brings `streaming` from 6.89 to 6.32 copies of the file from the
    /// origin (seeds 1-12; one viewer stalled 0.37 s before, none now), and
    /// `vod` from 10.62 to 9.62 (seeds 1-5, no viewer that does not seek
    /// stalling either way). Raise it for a viewer whose uplink is much
    /// faster than its neighbours' downlinks, which one stream cannot fill;
    /// 0 serves every unchoked neighbour in turn, as a peer that does not
    /// play does.
    ///
    /// Not applied while an upload rate limit is set
    /// ([`SwarmConfig::upload_rate_limit`] or
    /// [`Swarm::set_upload_rate_limit`](super::Swarm::set_upload_rate_limit)):
    /// below the link nothing waits in send buffers, the engine's order
    /// decides already, and one stream would only leave upload unused
    /// (`streaming` with the upload capped at 95 % of the link: 9.38 copies
    /// with one stream against 6.72 without, seeds 1-4).
    pub upload_streams: usize,
    /// Once its window is verified, a viewer asks peers (never the origin)
    /// for the pieces after it, in playback order, if its link has shown
    /// that it takes at least this many times the bitrate: the best rate
    /// measured from the origin or from peers. `None` keeps every request
    /// within the window.
    ///
    /// Uploaders serve such requests only when no neighbour's playback
    /// needs blocks soon (see `serve_first_within`), so they cost no one a
    /// deadline; what they buy is copies of the pieces few hold, ahead of
    /// need. In the simulator's `vod` scenario the first viewer takes the
    /// whole film from the origin early and was then the only holder of
    /// most of it, and viewers that seek past everyone else rescued from
    /// the origin what its uplink could not bring them: fetching ahead
    /// takes seeds 1-5 from 10.66, 6.75, 9.31, 8.26 and 11.00 copies of the
    /// film to 7.56, 6.76, 6.63, 7.15 and 7.60. A link of twice the
    /// bitrate has no room for it: in `streaming` it saved nothing over
    /// seeds 1-12 (6.36 copies against 6.32) and two seeds stalled 0.11 and
    /// 0.14 s.
    pub fetch_ahead_headroom: Option<f64>,
    /// How long, after the fast start, a piece that neighbours hold is left
    /// to them before the origin rescues it. `None` applies the rescue rule
    /// above from the first piece.
    pub startup_trust: Option<StartupTrust>,
}

/// How a viewer trusts peers with its first pieces after the fast start.
///
/// The rescue rule ([`StreamingConfig`]) wants peers to bring a piece a
/// whole rescue lead (the origin's time for it plus `rescue_margin`) before
/// its deadline, at the rate they have shown. Just after the fast start no
/// peer has shown a rate, and on a link of twice the bitrate the next pieces
/// are due sooner than that lead allows, so every newcomer took its second
/// and third pieces from the origin as well as its first.
///
/// Until peers have brought `pieces` pieces' worth of bytes, a window piece
/// that at least `holders` neighbours hold and unchoke us for is rescued
/// only when peers would bring the bytes up to it less than `spare` before
/// its deadline, or when the origin, after what it still has to bring us,
/// could deliver it only a rescue margin before the deadline. A piece at
/// risk that fewer neighbours hold puts the whole window back under the
/// rescue rule, whose early rescues need the link. Peers' rate is the one
/// they have shown; after a fast start ([`HttpConfig::first_piece_from_http`]),
/// until a piece's worth came from them, it is the origin's, which showed
/// the link (without a fast start the origin may be the slower source, as
/// in the demo, whose origin is capped).
///
/// In the simulator's `streaming` scenario (seeds 1-12) the origin serves
/// 5.66 copies of the file with it and 6.32 without, with no stall either
/// way and the same startup, and in `vod` (seeds 1-5) 5.60 against 7.14,
/// with no viewer that does not seek stalling; `swarm-sim --startup-trust
/// off` compares.
/// Trusting a single holder, or trusting peers past the first pieces,
/// brought stalls (of up to 1.21 s and 0.13 s).
#[derive(Debug, Clone, PartialEq)]
pub struct StartupTrust {
    /// Pieces' worth of bytes from peers after which the rescue rule applies.
    pub pieces: u32,
    /// Neighbours that must hold a piece and unchoke us.
    pub holders: usize,
    /// How long before its deadline peers must be expected to finish it.
    pub spare: Duration,
}

impl Default for StartupTrust {
    fn default() -> Self {
        Self {
            pieces: 3,
            holders: 2,
            spare: Duration::from_secs(1),
        }
    }
}

/// Which requested blocks a streaming viewer asks an idle peer for as well,
/// while its window holds the rest of the file back. The first copy to
/// arrive is kept and the other request cancelled, but a block already in
/// the other peer's send buffer crosses the cancel and is thrown away.
///
/// In the simulator (`swarm-sim --window-duplicates overdue`), `Overdue`
/// cuts the bytes viewers throw away from 75 to 5 copies of the film in
/// `vod` (seeds 1 and 3), and from 15 to 9 in `streaming`, and the origin
/// serves 11.45 and 10.24 copies of the film rather than 11.00 and 10.18:
/// the duplicates race slow peers and keep some rescues away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowDuplicates {
    /// Every block requested of another peer, as at the end of a download.
    #[default]
    All,
    /// Only blocks asked of a peer longer ago than `request_queue_time`
    /// (the time the queue kept at a peer should take it): for viewers
    /// whose upload is metered.
    Overdue,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(20),
            rescue_margin: Duration::from_millis(1500),
            origin_piece_time: Duration::from_millis(1500),
            serve_first_within: Duration::from_secs(10),
            window_duplicates: WindowDuplicates::All,
            upload_streams: 1,
            fetch_ahead_headroom: Some(3.0),
            startup_trust: Some(StartupTrust::default()),
        }
    }
}

/// Everything a [`Swarm`](super::Swarm) can be told at creation.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmConfig {
    /// Our 20-byte peer id, sent in handshakes. Under the
    /// [driver](crate::driver) (and the client) the driver's own replaces it.
    pub peer_id: [u8; 20],
    /// Seed of the swarm's random choices (tie-breaks, optimistic unchokes):
    /// the same seed and inputs give the same outputs. Under the
    /// [driver](crate::driver) it is drawn from the driver's seed.
    pub rng_seed: u64,
    /// Piece order.
    pub strategy: Strategy,
    /// Connections beyond this are closed after the handshake.
    pub max_peers: usize,
    /// Peers unchoked for their upload to us (tit-for-tat), besides the optimistic one.
    pub upload_slots: usize,
    /// How often the unchoke set is recomputed.
    pub rechoke_interval: Duration,
    /// How often the optimistic unchoke moves to another peer.
    pub optimistic_unchoke_interval: Duration,
    /// Upload limit in bytes per second, if any. For viewers, a limit just
    /// below the uplink (95 %) is worth setting when it is known: without
    /// it the connections' send buffers share the uplink evenly, whatever
    /// the order in which blocks were queued; with it, blocks go out in the
    /// engine's order (nearest playback deadline first). In the simulator's
    /// `vod` scenario (seed 1) it takes the origin from 11.0 to 9.8 copies
    /// and removes a 1.5 s stall.
    pub upload_rate_limit: Option<u64>,
    /// Seconds of transfer at a peer's measured rate to keep requested from it.
    pub request_queue_time: Duration,
    /// Fewest block requests kept outstanding to an unchoking peer.
    pub min_request_queue: u32,
    /// Most block requests kept outstanding to one peer.
    pub max_request_queue: u32,
    /// Most block requests accepted from one peer before it is disconnected.
    pub max_incoming_requests: usize,
    /// Verified pieces kept in memory to serve peers without a store read.
    pub piece_cache: usize,
    /// HTTP origin use.
    pub http: HttpConfig,
    /// Streaming window.
    pub streaming: StreamingConfig,
    /// How often periodic work (timeouts, choking, progress events) runs.
    pub tick: Duration,
    /// A keep-alive is sent after this long without sending anything.
    pub keepalive_interval: Duration,
    /// A peer silent for this long is disconnected.
    pub peer_idle_timeout: Duration,
    /// How long an incomplete torrent may go without any source (no peer
    /// connected, no usable web seed) before
    /// [`Event::NoSourceLeft`](super::Event::NoSourceLeft) says so.
    pub no_source_timeout: Duration,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            peer_id: *b"-CS0001-000000000000",
            rng_seed: 0,
            strategy: Strategy::RarestFirst,
            max_peers: 64,
            upload_slots: 8,
            rechoke_interval: Duration::from_secs(10),
            optimistic_unchoke_interval: Duration::from_secs(30),
            upload_rate_limit: None,
            request_queue_time: Duration::from_secs(1),
            min_request_queue: 4,
            max_request_queue: 256,
            max_incoming_requests: 512,
            piece_cache: 16,
            http: HttpConfig::default(),
            streaming: StreamingConfig::default(),
            tick: Duration::from_millis(250),
            keepalive_interval: Duration::from_secs(60),
            peer_idle_timeout: Duration::from_secs(180),
            no_source_timeout: Duration::from_secs(30),
        }
    }
}
