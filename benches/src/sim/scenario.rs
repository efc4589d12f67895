//! The named scenarios and their parameters.

use std::time::Duration;

use chunkswarm_core::pick::Strategy;
use chunkswarm_core::swarm::{HttpConfig, SwarmConfig};

use super::Introductions;

const MIB: u64 = 1 << 20;
/// Bytes per second in one megabit per second.
const MBIT: f64 = 125_000.0;

/// Everything that defines a run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Scenario name.
    pub name: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// Peers that join at the start (newcomers replace churned ones).
    pub peers: usize,
    /// Content length.
    pub file_bytes: u64,
    /// Piece length.
    pub piece_length: u32,
    /// Each peer's upload, bytes per second.
    pub peer_up: f64,
    /// Each peer's download, bytes per second.
    pub peer_down: f64,
    /// The origin's upload, bytes per second.
    pub origin_up: f64,
    /// One-way latency of every link.
    pub latency: Duration,
    /// Peers join evenly spread over this time.
    pub join_window: Duration,
    /// Connections a peer asks the tracker for (it announces with offers
    /// while it has fewer).
    pub connect_to: usize,
    /// Offers in one announce (the tracker's limit, as WebTorrent's).
    pub offers_per_announce: usize,
    /// Peers re-announce this often.
    pub announce_every: Duration,
    /// How the tracker chooses whom offers reach.
    pub introductions: Introductions,
    /// Fraction of peers leaving per minute (each replaced by a newcomer).
    pub churn_per_minute: f64,
    /// Churn stops at this time.
    pub churn_until: Duration,
    /// Fraction of peers that corrupt every block they send.
    pub corrupt_fraction: f64,
    /// Streaming bitrate in bytes per second: every peer is a viewer.
    pub bitrate: Option<f64>,
    /// Fraction of viewers that seek once to a random point.
    pub seek_fraction: f64,
    /// Adds one viewer that uses only the origin, as the startup reference.
    pub http_only_viewer: bool,
    /// The run stops here even if peers are still downloading.
    pub time_limit: Duration,
    /// The simulation step.
    pub dt: Duration,
    /// Every peer's engine configuration (peer id and seed are set per peer).
    pub swarm: SwarmConfig,
}

/// Names accepted by [`Params::scenario`].
pub const SCENARIOS: &[&str] = &[
    "flash-crowd",
    "streaming",
    "vod",
    "two-windows",
    "churn",
    "corrupt",
];

/// The demo's built-in sample: its length, and its duration in seconds.
const SAMPLE_BYTES: u64 = 3_617_811;
const SAMPLE_SECONDS: f64 = 40.0;

impl Params {
    /// The parameters of a named scenario.
    pub fn scenario(name: &str, seed: u64) -> Option<Self> {
        let base = Self {
            name: name.to_owned(),
            seed,
            peers: 100,
            file_bytes: 256 * MIB,
            piece_length: 1 << 20,
            peer_up: 20.0 * MBIT,
            peer_down: 100.0 * MBIT,
            origin_up: 80.0 * MBIT,
            latency: Duration::from_millis(25),
            join_window: Duration::from_secs(10),
            connect_to: 30,
            offers_per_announce: 10,
            announce_every: Duration::from_secs(15),
            introductions: Introductions::Tracker,
            churn_per_minute: 0.0,
            churn_until: Duration::ZERO,
            corrupt_fraction: 0.0,
            bitrate: None,
            seek_fraction: 0.0,
            http_only_viewer: false,
            time_limit: Duration::from_secs(3600),
            dt: Duration::from_millis(10),
            swarm: SwarmConfig::default(),
        };
        Some(match name {
            // 100 peers, 256 MiB, all join within 10 s, origin 4x a peer's upload.
            "flash-crowd" => base,
            // 50 viewers over 60 s; the bitrate is half a peer's download.
            "streaming" => Self {
                peers: 50,
                file_bytes: 64 * MIB,
                peer_up: 10.0 * MBIT,
                peer_down: 10.0 * MBIT,
                origin_up: 100.0 * MBIT,
                join_window: Duration::from_secs(60),
                bitrate: Some(5.0 * MBIT),
                http_only_viewer: true,
                swarm: streaming_engine(),
                ..base
            },
            // 300 viewers over 5 minutes of a 256 MiB film at 4 Mbit/s; 10%
            // seek once to a random point.
            "vod" => Self {
                peers: 300,
                peer_up: 10.0 * MBIT,
                peer_down: 20.0 * MBIT,
                origin_up: 100.0 * MBIT,
                join_window: Duration::from_secs(300),
                bitrate: Some(4.0 * MBIT),
                seek_fraction: 0.1,
                http_only_viewer: true,
                swarm: streaming_engine(),
                ..base
            },
            // The demo: two browser windows 4 s apart play the sample, over
            // loopback, from an origin capped at 256 KiB/s.
            "two-windows" => Self {
                peers: 2,
                file_bytes: SAMPLE_BYTES,
                piece_length: 128 << 10,
                peer_up: 100.0 * MBIT,
                peer_down: 100.0 * MBIT,
                origin_up: 256.0 * 1024.0,
                latency: Duration::from_millis(5),
                join_window: Duration::from_secs(8),
                bitrate: Some(SAMPLE_BYTES as f64 / SAMPLE_SECONDS),
                swarm: SwarmConfig {
                    strategy: Strategy::Streaming,
                    ..SwarmConfig::default()
                },
                ..base
            },
            // 30% of peers leave per minute, some mid-upload; newcomers replace them.
            "churn" => Self {
                peers: 50,
                file_bytes: 64 * MIB,
                churn_per_minute: 0.3,
                churn_until: Duration::from_secs(120),
                ..base
            },
            // 10% of peers corrupt every block they send.
            "corrupt" => Self {
                peers: 50,
                file_bytes: 64 * MIB,
                corrupt_fraction: 0.1,
                ..base
            },
            _ => return None,
        })
    }
}

/// The engine of a streaming viewer whose first piece comes from the origin.
fn streaming_engine() -> SwarmConfig {
    SwarmConfig {
        strategy: Strategy::Streaming,
        http: HttpConfig {
            first_piece_from_http: true,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    }
}
