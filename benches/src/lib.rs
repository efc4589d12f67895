//! Benchmarks of chunkswarm, and the swarm simulator they share.
//!
//! - `cargo bench -p chunkswarm-benches --bench create_torrent`: hashing a
//!   256 MiB file into a torrent, against `sha1sum` over the same file.
//! - `cargo bench -p chunkswarm-benches --bench picker`: one pick at 100,000
//!   pieces and 200 peers.
//! - `cargo run --release -p chunkswarm-benches --bin swarm-sim -- --scenario
//!   NAME --seed N --json`: a deterministic swarm simulation (see [`sim`]).

pub mod sim;
