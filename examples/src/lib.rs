//! Example programs built on chunkswarm; each binary in `src/bin` is one.
//!
//! - `torrent`: create a `.torrent` for a file or folder, or show one
//!   (`cargo run -p chunkswarm-examples --bin torrent -- --help`).
