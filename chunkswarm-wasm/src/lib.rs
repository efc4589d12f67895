//! chunkswarm in the browser.
//!
//! This crate becomes a `cdylib` built with `wasm-bindgen`: the sans-IO engine of
//! [`chunkswarm_core`] driven over `RTCPeerConnection` data channels, a WebSocket to
//! the tracker and `fetch` with `Range` to the web seed, with a JavaScript API.
//!
//! Status: the crate is being built; today it compiles the core for
//! `wasm32-unknown-unknown` and re-exports its formats.

pub use chunkswarm_core::{layout, metainfo};
