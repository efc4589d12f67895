//! Example programs built on chunkswarm; each binary in `src/bin` is one.
//!
//! - `server`: the browser demo: tracker, HTTP origin, catalog and the demo
//!   page on a built-in sample video
//!   (`cargo run --release -p chunkswarm-examples --bin server`); its parts
//!   are in [`demo`].
//! - `torrent`: create a `.torrent` for a file or folder, or show one
//!   (`cargo run -p chunkswarm-examples --bin torrent -- --help`).
//! - `peer`: a native peer that seeds a file or fetches a torrent over
//!   WebRTC and the web seed, with a progress bar and a `--json` summary
//!   (`cargo run -p chunkswarm-examples --bin peer -- --help`).

pub mod demo;
