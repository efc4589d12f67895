//! The transport-agnostic core of chunkswarm.
//!
//! chunkswarm fetches a large media file in pieces from other peers over WebRTC
//! data channels, falls back to HTTP range requests against a web seed, and
//! verifies every piece by hash. This crate holds everything that does not touch
//! the network, so the browser and native adapters share it unchanged:
//!
//! - [`metainfo`]: BitTorrent v1 `.torrent` files, parsed and created, with
//!   the infohash computed over the info dictionary exactly as received.
//! - [`magnet`]: magnet links (BEP 9), parsed and written.
//! - [`layout`]: piece and 16 KiB block geometry, with indices that are in range
//!   by construction.
//! - [`piece_map`]: the compact bitfield in BEP 3 bit order and per-piece
//!   availability counts that the piece picker reads.
//! - [`wire`]: the BitTorrent peer wire protocol (BEP 3, the BEP 6 fast
//!   extension, BEP 10 extended messages) as a streaming codec that takes
//!   bytes split anywhere and bounds every length before it allocates;
//!   [`wire::extension`] reads and writes the BEP 10 handshake and the
//!   `cs_origin` claims the engine uses to share out origin fetches;
//!   [`wire::metadata`] passes a torrent's info dictionary between peers
//!   (BEP 9), verified against the infohash.
//! - [`swarm`]: the sans-IO engine, one [`swarm::Swarm`] per torrent, with its
//!   policies behind small traits: [`pick`] (piece order) and [`retry`]
//!   (timeouts, backoff, when to pay the HTTP origin); [`rate`] holds the rate
//!   estimators and limiters it runs on.
//! - [`driver`]: the I/O traits an adapter implements (signaling, peer
//!   connections, HTTP origin, piece store, sleep) and the runtime-agnostic
//!   loop that drives swarms over them.
//! - `native` (feature `native`): the tokio adapter: WebRTC data channels, the
//!   WebSocket tracker client, HTTP range requests, the on-disk piece store.
//!
//! Every parser here returns a typed error on bad input and never panics.

#[cfg(feature = "native")]
pub mod client;
pub mod driver;
pub mod layout;
pub mod magnet;
pub mod metainfo;
#[cfg(feature = "native")]
pub mod native;

#[cfg(feature = "native")]
pub use client::{AddOptions, Client, ClientConfig, Torrent};
pub mod pick;
pub mod piece_map;
pub mod rate;
pub mod retry;
mod rng;
pub mod swarm;
pub mod wire;
