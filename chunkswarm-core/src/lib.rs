//! chunkswarm: peer-to-peer delivery of large media files.
//!
//! chunkswarm fetches a large media file in pieces from other peers over WebRTC
//! data channels, falls back to HTTP range requests against a web seed, and
//! verifies every piece by hash.
//!
//! # Start here: the client (feature `native`)
//!
//! ```no_run
//! # #[cfg(feature = "native")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use chunkswarm_core::{Client, ClientConfig};
//!
//! let client = Client::new(ClientConfig::default());
//! let torrent = client.add("https://media.example/torrents/film.webm.torrent").await?;
//! let mut state = torrent.watch();
//! tokio::spawn(async move {
//!     while state.changed().await.is_ok() {
//!         let s = state.borrow().stats;
//!         eprintln!("{}/{} pieces", s.pieces_verified, s.pieces_total);
//!     }
//! });
//! torrent.wait().await?; // verified, written and flushed: the file is whole
//! # Ok(()) }
//! ```
//!
//! [`client`] says what the defaults are (a random peer id, the torrent's
//! own trackers and web seeds) and which errors come back (typed:
//! [`client::AddError`], [`client::TorrentError`],
//! [`driver::TrackerError`], [`driver::StoreError`] with its
//! `io::ErrorKind`). Examples that run as they are:
//! `examples/src/bin/fetch_file.rs` (a torrent by URL into a file with a
//! progress line) and `examples/src/bin/swarm_in_one_process.rs` (tracker,
//! seeder and fetcher in one program).
//!
//! # Underneath
//!
//! The rest of the crate is public for programs that need their own store,
//! signaling or connections, and is shared unchanged by the browser adapter:
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
//! - [`metadata_fetch`]: the sans-IO fetch of an info dictionary from peers
//!   when only a magnet link's infohash is known, naming (and banning) any
//!   peer whose copy is not the torrent's; it then hands its connections
//!   to the download ([`swarm::Swarm::admit_peer`]).
//! - [`swarm`]: the sans-IO engine, one [`swarm::Swarm`] per torrent, with its
//!   policies behind small traits: [`pick`] (piece order) and [`retry`]
//!   (timeouts, backoff, when to pay the HTTP origin); [`rate`] holds the rate
//!   estimators and limiters it runs on.
//! - [`driver`]: the I/O traits an adapter implements (signaling, peer
//!   connections, HTTP origin, piece store, sleep) and the runtime-agnostic
//!   loop that drives swarms over them.
//! - [`tracker_protocol`]: the WebTorrent tracker messages, shared by the
//!   driver's tracker client and by the `chunkswarm-tracker` crate.
//! - `native` (feature `native`): the tokio adapter: WebRTC data channels, the
//!   WebSocket tracker client, HTTP range requests, the on-disk piece store.
//!
//! Every parser here returns a typed error on bad input and never panics.

// Tests drive the real-time driver on threads and the clock.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

// The adapters read the clock and spawn; the rest of the crate may not
// (`clippy.toml`).
#[cfg(feature = "native")]
#[allow(clippy::disallowed_methods)]
pub mod client;
pub mod driver;
pub mod layout;
pub mod magnet;
pub mod metadata_fetch;
pub mod metainfo;
#[cfg(feature = "native")]
#[allow(clippy::disallowed_methods)]
pub mod native;

#[cfg(feature = "native")]
pub use client::{AddOptions, Client, ClientConfig, Torrent};
pub mod pick;
pub mod piece_map;
pub mod rate;
pub mod retry;
mod rng;
pub mod swarm;
pub mod tracker_protocol;
pub mod web_seed;
pub mod wire;
