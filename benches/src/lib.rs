//! Benchmarks of chunkswarm. Run them with `cargo bench -p chunkswarm-benches`.
//!
//! - `create_torrent`: hashing a 256 MiB file into a torrent, against
//!   `sha1sum` over the same file in the same run.
