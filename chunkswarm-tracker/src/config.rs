//! What a tracker is told at start: where the media is, how it is reached,
//! and the limits that keep one client from hurting the others.

use std::path::PathBuf;
use std::time::Duration;

use crate::ice::IceConfig;
use crate::proxy::IpCidr;

/// Everything a [`Tracker`](crate::Tracker) is built from. [`Config::default`]
/// gives the documented defaults; set the fields you need.
#[derive(Debug, Clone)]
pub struct Config {
    /// The media library the HTTP origin serves and the catalog lists.
    /// Default: none (no origin, an empty catalog).
    pub media_dir: Option<PathBuf>,
    /// The URL clients reach this server at, e.g. `https://media.example`;
    /// torrents carry it as their web seed (`{public_url}/media/...`) and, with
    /// the scheme changed to `ws`/`wss`, as their tracker
    /// (`{public_url}/announce`). Default: none, meaning the address
    /// [`serve`](crate::serve) listens on (`http://127.0.0.1:PORT` for an
    /// unspecified address).
    pub public_url: Option<String>,
    /// PEM files for TLS (`https://` and `wss://`). Default: none (plain TCP).
    pub tls: Option<TlsFiles>,
    /// The re-announce interval told to clients. Default: 120 s, as
    /// WebTorrent's own tracker tells its WebSocket clients.
    pub announce_interval: Duration,
    /// The `Access-Control-Allow-Origin` sent on HTTP answers. Default: `*`,
    /// so a demo page on another origin can use the API and the origin.
    /// `None` sends no CORS headers.
    pub cors_allow_origin: Option<String>,
    /// The piece length of the torrents made of library files, in bytes
    /// (1 to 64 MiB; BitTorrent tools use powers of two). Smaller pieces
    /// make more, smaller units of exchange: a short clip in 256 KiB pieces
    /// still spreads over many peers. Default: 1 MiB
    /// ([`DEFAULT_PIECE_LENGTH`](chunkswarm_core::layout::DEFAULT_PIECE_LENGTH)).
    pub piece_length: u32,
    /// Make the torrent of every library file in the background, at start
    /// and every minute after, so catalog entries carry their infohash
    /// without waiting for a first `.torrent` request. Default: true.
    pub prepare_torrents: bool,
    /// Reverse proxies and load balancers whose `X-Forwarded-For` header
    /// names the client ([`IpCidr`] blocks). The per-address limits then
    /// apply to the client, not to the proxy; the header of any other peer
    /// is ignored. Default: none (every connection is its own client).
    pub trusted_proxies: Vec<IpCidr>,
    /// Connections from [`trusted_proxies`](Self::trusted_proxies) start
    /// with a PROXY protocol header (HAProxy's, version 1 or 2), which names
    /// the client; one without a valid header is closed. For load balancers
    /// that pass TCP (and TLS) through. Connections from other addresses are
    /// read as usual. Default: false.
    pub proxy_protocol: bool,
    /// Cluster mode: the Redis server (`redis://host:port/db`) through which
    /// several tracker processes act as one tracker: peers on different
    /// nodes meet, a `peer_id` belongs to one node at a time, and announce
    /// and scrape counts are cluster-wide. A node that dies is forgotten
    /// within 8 s; while Redis is unreachable each node serves its own peers
    /// and says so in `/healthz` and the metrics, and it resyncs when Redis is
    /// back. Default: none (the tracker alone).
    pub redis: Option<String>,
    /// STUN and TURN servers handed to clients, with short-lived TURN
    /// credentials, in every announce reply (`x_cs_ice`) and at
    /// `GET /api/ice`. Default: none (clients use what they are told).
    pub ice: Option<IceConfig>,
    /// Abuse limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            media_dir: None,
            public_url: None,
            tls: None,
            announce_interval: Duration::from_secs(120),
            cors_allow_origin: Some("*".to_owned()),
            piece_length: chunkswarm_core::layout::DEFAULT_PIECE_LENGTH,
            prepare_torrents: true,
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            redis: None,
            ice: None,
            limits: Limits::default(),
        }
    }
}

/// The certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Bounds on what one connection or one address may cost the tracker.
///
/// A client over a bound gets a `failure reason` answer, or its connection
/// is closed; it never makes the tracker wait, so other clients are not
/// slowed.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest WebSocket message accepted, in bytes; a larger one closes the
    /// connection (close code 1009). Default: 64 KiB, room for ten offers
    /// with full SDP.
    pub max_message_bytes: usize,
    /// Offers forwarded per announce; further offers are ignored, as if the
    /// swarm were smaller. Default: 10, the most a WebTorrent client sends.
    pub max_offers_per_announce: usize,
    /// Swarms one connection may be in at once. WebTorrent clients share one
    /// socket per tracker for all their torrents, so this bounds the torrents
    /// one client may seed through the tracker. Default: 2,000 (a desktop
    /// client seeding 1,000 torrents, twice over).
    pub max_swarms_per_connection: usize,
    /// Distinct `peer_id`s one connection may announce (WebTorrent clients in
    /// one page share a socket). Default: 8.
    pub max_peer_ids_per_connection: usize,
    /// Swarms the tracker holds at once. Default: 100,000.
    pub max_swarms: usize,
    /// Bytes of piece bitfields (chunkswarm's `x_cs_bitfield` and
    /// `x_cs_have`) the peers of one connection may hold in the registry;
    /// reports past it are refused. Default: 64 KiB (a 64 GiB file in 1 MiB
    /// pieces takes 8 KiB).
    pub max_bitfield_bytes_per_connection: usize,
    /// Info hashes one `scrape` may ask about. Default: 64.
    pub max_scrape_hashes: usize,
    /// Open WebSocket connections in all. Default: 100,000.
    pub max_connections: usize,
    /// Open WebSocket connections from one address (one IPv6 /64). Default: 256.
    pub max_connections_per_ip: usize,
    /// Sustained requests per second from one address (one IPv6 /64): every
    /// WebSocket message, connection and HTTP request takes a token from the
    /// address's bucket. 0 turns rate limiting off. Default: 50.
    pub ip_requests_per_second: u32,
    /// The bucket's size: how many requests an address may make at once
    /// after a quiet spell. Default: 500.
    pub ip_burst: u32,
    /// A connection that sends nothing for this long is closed, and its
    /// peers leave their swarms. Default: 300 s (WebTorrent clients
    /// re-announce every [`Config::announce_interval`]).
    pub idle_timeout: Duration,
    /// A peer that has not announced in a swarm for this long leaves it, even
    /// if its connection stays open for other swarms. Default: 300 s.
    pub peer_timeout: Duration,
    /// How long a forwarded offer may be answered. Default: 60 s (WebTorrent
    /// clients give up on an offer after 50 s).
    pub offer_ttl: Duration,
    /// Forwarded offers of one connection awaiting an answer; the oldest are
    /// forgotten beyond this (their answers are then refused as unsolicited).
    /// Default: 2,000: a client seeding 1,000 torrents over one socket sends
    /// about 10 offers per torrent every 2 minutes, some 5,000 in an offer's
    /// lifetime, and answers come back within seconds. At most about 200 KiB
    /// per connection.
    pub max_pending_offers_per_connection: usize,
    /// Messages queued to one connection. A client that does not read loses
    /// the messages past this instead of slowing the tracker. Default: 256.
    pub outbound_queue: usize,
    /// The abuse budget of one connection, a token bucket: every abusive
    /// message (unparsable, invalid, a `peer_id` of another connection, a
    /// malformed piece report, a message past the address's rate limit) takes
    /// a token, and a connection with none left is closed (close code 1008).
    /// Refusals a well-behaved client meets in a churning swarm (an answer to
    /// a peer that left or to an offer that expired, a peer gone, a limit
    /// reached) get their reply and take nothing. Default: a burst of 32,
    /// refilled at 1 per second.
    pub abuse: RateBudget,
    /// Time allowed for a TLS handshake. Default: 10 s.
    pub tls_handshake_timeout: Duration,
    /// After shutdown starts, how long [`serve`](crate::serve) waits for
    /// open HTTP answers (e.g. long downloads) before it returns. Default: 10 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 10,
            max_offers_per_announce: 10,
            max_swarms_per_connection: 2_000,
            max_peer_ids_per_connection: 8,
            max_swarms: 100_000,
            max_bitfield_bytes_per_connection: 64 << 10,
            max_scrape_hashes: 64,
            max_connections: 100_000,
            max_connections_per_ip: 256,
            ip_requests_per_second: 50,
            ip_burst: 500,
            idle_timeout: Duration::from_secs(300),
            peer_timeout: Duration::from_secs(300),
            offer_ttl: Duration::from_secs(60),
            max_pending_offers_per_connection: 2_000,
            outbound_queue: 256,
            abuse: RateBudget {
                per_second: 1.0,
                burst: 32,
            },
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A token bucket's settings: `burst` tokens at first and at most, refilled at
/// `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateBudget {
    /// Tokens added per second (fractions allowed; 0 never refills).
    pub per_second: f64,
    /// The bucket's size.
    pub burst: u32,
}
