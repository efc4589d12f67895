//! Creating a torrent for a 256 MiB file, against `sha1sum` over the same file.
//!
//! Both read the file from the page cache on one core, so the comparison is
//! SHA-1 speed plus reading overhead. Before criterion's own statistics, the
//! bench prints the best of several runs of each and their ratio (goal: at
//! least 0.8 of `sha1sum`'s speed).
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chunkswarm_core::metainfo::TorrentBuilder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FILE_LEN: usize = 256 << 20;
const ROUNDS: usize = 5;

/// Incompressible content, made fast: a xorshift stream.
fn write_content(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..FILE_LEN / chunk.len() {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).unwrap();
    }
}

fn best_of(rounds: usize, mut run: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .unwrap()
}

fn mib_per_s(elapsed: Duration) -> f64 {
    FILE_LEN as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
}

fn create_torrent(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("content.bin");
    write_content(&path);

    let sha1sum = best_of(ROUNDS, || {
        let status = Command::new("sha1sum").arg(&path).output().unwrap().status;
        assert!(status.success(), "sha1sum failed");
    });
    let ours = best_of(ROUNDS, || {
        black_box(TorrentBuilder::new().build_from_path(&path).unwrap());
    });
    println!(
        "create_torrent 256 MiB: chunkswarm {:.0} MiB/s, sha1sum {:.0} MiB/s, ratio {:.2} (goal >= 0.80)",
        mib_per_s(ours),
        mib_per_s(sha1sum),
        sha1sum.as_secs_f64() / ours.as_secs_f64(),
    );

    let mut group = c.benchmark_group("create_torrent");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(FILE_LEN as u64));
    group.bench_function("256MiB_1MiB_pieces", |b| {
        b.iter(|| TorrentBuilder::new().build_from_path(&path).unwrap());
    });
    group.finish();
}

criterion_group!(benches, create_torrent);
criterion_main!(benches);
