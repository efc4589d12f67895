//! The chunkswarm tracker: the one server a deployment runs.
//!
//! It introduces peers to each other and relays their WebRTC offers and
//! answers over the WebTorrent WebSocket tracker protocol, keeps the chunk
//! registry (which peer holds which piece), serves the media library over
//! HTTP with `Range` as the swarm's web seed (BEP 19) with a `.torrent` per
//! file, and answers catalog searches.
//!
//! # Use
//!
//! In a program, beside other work (tests, a seeder and a fetcher in one
//! process): [`Tracker::start`] binds, serves on a tokio task and gives the
//! URLs peers need.
//!
//! ```no_run
//! use chunkswarm_tracker::{Config, Tracker};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config { media_dir: Some("media".into()), ..Config::default() };
//! let tracker = Tracker::new(config)?.start("127.0.0.1:0").await?;
//! let announce = tracker.announce_url(); // ws://127.0.0.1:PORT/announce
//! let web_seed = tracker.media_url("film.webm"); // http://127.0.0.1:PORT/media/film.webm
//! let torrent = tracker.torrent_url("film.webm"); // its .torrent, naming both
//! # let _ = (announce, web_seed, torrent);
//! tracker.stop().await?;
//! # Ok(()) }
//! ```
//!
//! As the one server of a deployment:
//!
//! ```no_run
//! use chunkswarm_tracker::{Config, Tracker, serve};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config {
//!     media_dir: Some("media".into()),
//!     public_url: Some("https://tracker.example".into()),
//!     ..Config::default()
//! };
//! let tracker = Tracker::new(config)?;
//! let listener = chunkswarm_tracker::bind("0.0.0.0:8000").await?;
//! serve(listener, tracker, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```
//!
//! The library pulls no command-line dependencies; the
//! `chunkswarm-tracker` binary is built with `--features cli`.
//!
//! Call order: build a [`Tracker`] from a [`Config`]; then either [`serve`]
//! it, which runs everything until the shutdown future completes, or mount
//! [`router`] in your own server, spawn [`Tracker::maintain`], and call
//! [`Tracker::shutdown`] when done. To serve more routes beside the
//! tracker's (a web page, say), build them around [`router`] and hand the
//! result to [`serve_app`]. Serving through [`serve`] is what records
//! each client's address, which the per-address limits need.
//!
//! # Endpoints
//!
//! | path | what |
//! |---|---|
//! | `GET /announce`, `GET /` (WebSocket) | the tracker (signaling) |
//! | `GET`/`HEAD /media/{path}` | the origin: library files, with `Range` |
//! | `GET /torrents/{path}.torrent` | the torrent of a library media file |
//! | `GET /api/swarms` | swarms with peer and seeder counts |
//! | `GET /api/swarms/{infohash hex}/pieces` | per piece, how many peers hold it and which |
//! | `GET /api/search?q=` | catalog search with live peer counts |
//! | `GET /api/ice` | STUN/TURN servers with short-lived TURN credentials ([`Config::ice`]) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /healthz` | `ok`, or 503 while shutting down |
//!
//! # Signaling protocol
//!
//! Messages are JSON text frames, as WebTorrent's `bittorrent-tracker` speaks
//! them. Info hashes, peer ids and offer ids are 20-byte *binary strings*: JSON
//! strings of 20 characters each at most U+00FF, one per byte. Clients'
//! messages are read by the protocol's one implementation,
//! [`chunkswarm_core::tracker_protocol`], which chunkswarm's own clients are
//! tested against.
//!
//! - `{"action":"announce","info_hash","peer_id","numwant","uploaded",
//!   "downloaded","left","event","offers":[{"offer_id","offer"}]}` joins the
//!   swarm (`event` is `started`, `stopped`, `completed` or absent; `left: 0`
//!   makes a seeder) and is answered with
//!   `{"action":"announce","interval","info_hash","complete","incomplete"}`.
//!   Each offer (at most [`Limits::max_offers_per_announce`]; like
//!   WebTorrent's tracker, the number of offers is the `numwant`) goes to a
//!   different peer of the swarm (seeders skip seeders) as
//!   `{"action":"announce","offer","offer_id","peer_id","info_hash"}`. The
//!   chunk registry chooses the peers ([`introductions`]): those holding the
//!   pieces the announcing peer lacks next, those it can help, and a random
//!   share; a peer that reports no pieces (a WebTorrent client) meets random
//!   peers, as on WebTorrent's tracker.
//! - `{"action":"announce","info_hash","peer_id","to_peer_id","answer","offer_id"}`
//!   relays the answer to the offerer as
//!   `{"action":"announce","answer","offer_id","peer_id","info_hash"}`, with
//!   no reply to the answerer.
//! - `{"action":"scrape","info_hash": one or a list}` is answered with
//!   `{"action":"scrape","files":{<info_hash>:{"complete","incomplete","downloaded"}}}`.
//! - A refusal is `{"action","failure reason","info_hash"}`.
//!
//! Anti-spoofing: a `peer_id` belongs to the connection that first announced
//! it, until that connection closes; another connection using it is refused.
//! An answer is relayed only if the tracker forwarded that very offer
//! (`offer_id` from `to_peer_id`) to the answering peer over this connection,
//! less than [`Limits::offer_ttl`] ago, and it was not answered yet.
//!
//! # chunkswarm extensions
//!
//! Extra fields and actions that WebTorrent clients neither send nor need to
//! understand (they ignore unknown fields, and the tracker sends them nothing
//! new):
//!
//! - On `announce`, `"x_cs_bitfield": "<hex>"` reports the pieces the peer
//!   holds, as the hex of the BEP 3 `bitfield` payload (`ceil(pieces / 8)`
//!   bytes, high bit of the first byte is piece 0, spare bits zero), and
//!   `"x_cs_pieces": <piece count>` gives the count. The count is required
//!   unless the tracker knows the torrent (its own library) or an earlier
//!   report fixed it; a mismatch is refused. A full bitfield makes a seeder.
//!   A bad report (or one past
//!   [`Limits::max_bitfield_bytes_per_connection`]) does not fail the
//!   announce: its answer carries a `"warning message"`.
//! - On `announce`, `"x_cs_position": <piece index>` gives the piece the
//!   peer's playhead is in, while it plays as it downloads; the tracker then
//!   introduces it first to holders of the pieces it lacks from there on.
//!   Every announce replaces it (absent means none). Not an integer in
//!   `0..2^32`: the announce is refused.
//! - With [`Config::ice`], every announce reply but `stopped`'s carries
//!   `"x_cs_ice": {"iceServers":[RTCIceServer..],"ttl","expires"}`: the
//!   STUN/TURN servers, with a TURN credential for this peer that expires at
//!   `expires` (Unix seconds), in the TURN REST API scheme coturn's
//!   `use-auth-secret` checks. Clients use the latest for new connections.
//! - Every announce reply to a peer that reports its pieces (but
//!   `stopped`'s) carries `"x_cs_swarm": {"peers","seeders","first",
//!   "holders":[counts],"fetch":[indices]}`: the swarm's members and
//!   seeders, how many members hold each of the pieces from `first` (the
//!   first the peer lacks from its playback position on), and which of those
//!   nobody holds the peer is to fetch from the origin, so that across the
//!   swarm one member fetches each (see [`introductions::facts`]).
//! - `{"action":"x_cs_have","info_hash","peer_id","pieces":[indices]}` adds
//!   pieces the peer gained since (at most 4096 per message). No reply
//!   unless refused.
//!
//! The registry forgets a peer's pieces when it sends `stopped`, when its
//! connection closes, or when it has not announced for
//! [`Limits::peer_timeout`].
//!
//! # Limits
//!
//! See [`Limits`]: message size (a larger message closes the connection with
//! 1009), offers per announce, swarms, peer ids and bitfield bytes per
//! connection, open connections in all and per address, a per-address token
//! bucket over connections, messages and HTTP requests, idle connections
//! closed, a bounded queue per connection and a write deadline so a client
//! that does not read only loses its own messages, and an abuse budget per
//! connection ([`Limits::abuse`], a token bucket) whose exhaustion closes it
//! with 1008.
//!
//! Refusals are sorted by cause. What a correct client meets in a churning
//! swarm (an answer to a peer that left or to an offer that expired or was
//! forgotten, a recipient that does not read, pieces reported for a swarm it
//! was dropped from for silence) and limits reached get their
//! `failure reason` and cost nothing. Only what a correct client never sends
//! (unparsable or invalid messages, another connection's `peer_id`, malformed
//! piece reports, messages past the address's rate) spends the budget, which
//! refills over time, so a long-lived connection is never closed for a
//! lifetime total.
//!
//! Behind a load balancer or reverse proxy, list it in
//! [`Config::trusted_proxies`]: the per-address limits then key on the client
//! address its `X-Forwarded-For` gives ([`IpCidr`] says how blocks are
//! written), or, with [`Config::proxy_protocol`], the address in the PROXY
//! protocol header (v1 or v2) it starts each connection with.
//!
//! # Cluster mode
//!
//! With [`Config::redis`] (`--redis URL`) several tracker processes behind a
//! load balancer act as one tracker through Redis:
//!
//! - a `peer_id` belongs to one node at a time: another node's connection
//!   announcing it is refused as on one tracker;
//! - an announce joins the swarm cluster-wide with its piece report and
//!   playback position; the piece map chooses its offers' recipients among
//!   the members of every node alike (a remote member's pieces as of its last
//!   announce), and its reply counts, like `scrape`, cover every node;
//! - an offer for a member on another node is published to that node, which
//!   delivers it; the answer is checked there, against the offer it
//!   delivered, and published back to the offerer's node.
//!
//! A node renews a lease every 2 s; when one dies, its peers stop counting
//! and their `peer_id`s can be claimed elsewhere once its lease lapses (6 s),
//! so its clients can reconnect to another node and announce again; its
//! entries are deleted within 8 s. Pieces peers gain between announces
//! (`x_cs_have`) reach the other nodes at the next heartbeat. While Redis is unreachable a node serves its own peers alone,
//! `/healthz` says `cluster: redis unreachable` and the metric
//! `chunkswarm_tracker_cluster_connected` is 0; when Redis is back the node
//! writes its peers and memberships again. `/api/swarms` (every swarm of
//! the cluster, those without a member on this node included),
//! `/api/swarms/{infohash}/pieces` and the peer counts of catalog searches
//! are the cluster's; `/api/swarms` and `/api/search` say whose in `view`
//! (`cluster`, or `local` with `"cluster": "redis unreachable"` while this
//! node serves its own peers alone).
//!
//! # Compatibility check with WebTorrent
//!
//! `tests/webtorrent/run.sh` runs three unchanged clients of npm
//! `bittorrent-tracker` (the tracker client inside WebTorrent) against the
//! tracker in a loopback-only network namespace: they announce, each gets an
//! offer or an answer from both others, and they scrape; with `--cluster`
//! the three clients announce to three nodes of a cluster sharing a
//! `redis-server`. It needs node and
//! npm, so it is not part of `cargo test`.

mod api;
mod catalog;
mod cluster;
mod config;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod http;
mod ice;
pub mod introductions;
mod library;
mod limits;
mod listener;
mod metrics;
mod origin;
mod proxy;
mod proxy_protocol;
mod registry;
mod running;
mod serve;
mod signaling;
mod tls;
mod tls_stream;
mod torrents;
mod tracker;
mod urls;

use axum::Router;
use axum::routing::get;

pub use catalog::{Catalog, CatalogEntry, CatalogError, SearchFuture};
pub use chunkswarm_core::metainfo;
pub use config::{Config, Limits, RateBudget, TlsFiles};
pub use ice::{IceConfig, IceConfigError, MAX_TTL, MIN_TTL, TurnSecret};
pub use listener::{LISTEN_BACKLOG, bind};
pub use proxy::{IpCidr, IpCidrError};
pub use running::RunningTracker;
pub use serve::{ServeError, serve, serve_app};
pub use tls::TlsError;
pub use tracker::{Tracker, TrackerError};

/// The tracker's routes, for mounting in any axum server. Per-address limits
/// need the client's address, which [`serve`] records; without it every
/// client counts as one address.
pub fn router(tracker: Tracker) -> Router {
    let limited = Router::new()
        .route("/media/{*path}", get(origin::media))
        .route("/torrents/{*path}", get(origin::torrent))
        .route("/api/swarms", get(api::swarms))
        .route("/api/swarms/{info_hash}/pieces", get(api::pieces))
        .route("/api/search", get(api::search))
        .route("/api/ice", get(ice::api_ice))
        .route_layer(axum::middleware::from_fn_with_state(
            tracker.clone(),
            http::rate_limit,
        ));
    Router::new()
        .route("/", get(signaling::upgrade))
        .route("/announce", get(signaling::upgrade))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(api::healthz))
        .merge(limited)
        .layer(axum::middleware::from_fn_with_state(
            tracker.clone(),
            http::cors,
        ))
        .with_state(tracker)
}
