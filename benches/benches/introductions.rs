//! One introduction choice of the tracker in a swarm of 10,000 peers and
//! 2,000 pieces.
//!
//! The swarm is mostly streaming viewers (each holds the pieces from 0 to a
//! little past its playhead, at a random point of the film), with 5 %
//! seeders, 5 % WebTorrent clients that report no pieces, and 10 %
//! downloaders holding random pieces. Each choice is for a random viewer
//! announcing with 10 offers (WebTorrent's maximum). Before criterion's
//! statistics the bench prints the p50/p99 latency of single choices (goal:
//! p99 <= 50 us).
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use chunkswarm_core::layout::Layout;
use chunkswarm_core::piece_map::Bitfield;
use chunkswarm_tracker::introductions::{Asker, Holdings, Member, choose};
use criterion::{Criterion, criterion_group, criterion_main};

const PIECES: u32 = 2_000;
const PEERS: usize = 10_000;
const OFFERS: usize = 10;

enum BenchPeer {
    Seeder,
    WebTorrent,
    Downloader(Bitfield),
    Viewer(Bitfield, u32),
}

impl Member for BenchPeer {
    fn holdings(&self) -> Holdings<'_> {
        match self {
            Self::Seeder => Holdings::All,
            Self::WebTorrent => Holdings::Unknown,
            Self::Downloader(field) | Self::Viewer(field, _) => Holdings::Some(field),
        }
    }

    fn position(&self) -> Option<u32> {
        match self {
            Self::Viewer(_, position) => Some(*position),
            _ => None,
        }
    }
}

fn swarm(rng: &mut fastrand::Rng) -> Vec<BenchPeer> {
    let space = Layout::new(u64::from(PIECES), 1).unwrap();
    (0..PEERS)
        .map(|_| match rng.u32(0..100) {
            0..5 => BenchPeer::Seeder,
            5..10 => BenchPeer::WebTorrent,
            10..20 => {
                let mut field = Bitfield::new(PIECES);
                let density = rng.u32(5..95);
                for piece in space.pieces() {
                    if rng.u32(0..100) < density {
                        field.insert(piece);
                    }
                }
                BenchPeer::Downloader(field)
            }
            _ => {
                let position = rng.u32(0..PIECES);
                let buffered = (position + rng.u32(0..30)).min(PIECES - 1);
                let mut field = Bitfield::new(PIECES);
                for piece in (0..=buffered).filter_map(|i| space.piece(i)) {
                    field.insert(piece);
                }
                BenchPeer::Viewer(field, position)
            }
        })
        .collect()
}

fn one_choice(peers: &[BenchPeer], rng: &mut fastrand::Rng) -> Vec<usize> {
    let index = loop {
        let i = rng.usize(0..peers.len());
        if matches!(peers[i], BenchPeer::Viewer(..)) {
            break i;
        }
    };
    let asker = Asker {
        holdings: peers[index].holdings(),
        position: peers[index].position(),
        index: Some(index),
        piece_count: PIECES,
    };
    choose(&asker, peers, OFFERS, rng)
}

fn report(peers: &[BenchPeer]) {
    let mut rng = fastrand::Rng::with_seed(2);
    let rounds = 20_000;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(one_choice(peers, &mut rng));
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "introductions: {PEERS} peers x {PIECES} pieces, {OFFERS} offers: p50 {:?}, p99 {:?} (goal: p99 <= 50us)",
        at(0.5),
        at(0.99),
    );
}

fn introductions(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(1);
    let peers = swarm(&mut rng);
    report(&peers);
    c.bench_function("introduce_10k_peers_2k_pieces", |b| {
        b.iter(|| black_box(one_choice(&peers, &mut rng)))
    });
}

criterion_group!(benches, introductions);
criterion_main!(benches);
