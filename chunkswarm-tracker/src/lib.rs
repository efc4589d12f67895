//! The chunkswarm tracker: the one server a deployment runs.
//!
//! It introduces peers to each other and relays their WebRTC offers and answers
//! over the WebTorrent WebSocket tracker protocol, keeps the chunk registry (which
//! peer holds which piece), serves the media library over HTTP with `Range` as the
//! swarm's web seed (BEP 19), and answers catalog searches.
//!
//! Status: the crate is being built; today it only re-exports the formats it
//! serves from [`chunkswarm_core`].

pub use chunkswarm_core::metainfo;
