//! One pick at 100,000 pieces and 200 peers, rarest-first and streaming.
//!
//! Peers hold random subsets (10–90% of pieces each), 30% of pieces are
//! already verified, and 1% are in progress. Before criterion's statistics
//! the bench prints the p50/p99 latency of single picks and picks per second
//! on one core (goals: p99 <= 2 us, >= 1M picks/s), and the picker's state
//! per piece beyond the bitfields (goal: <= 16 bytes).
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use chunkswarm_core::layout::{Layout, PieceIndex};
use chunkswarm_core::pick::{PeerView, PiecePicker, PriorityPicker, Strategy};
use chunkswarm_core::piece_map::{Availability, Bitfield};
use criterion::{Criterion, criterion_group, criterion_main};

const PIECES: u32 = 100_000;
const PEERS: usize = 200;

struct Setup {
    picker: PriorityPicker,
    peers: Vec<Bitfield>,
    in_progress: HashSet<PieceIndex>,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn setup(strategy: Strategy) -> Setup {
    let layout = Layout::new(u64::from(PIECES) << 20, 1 << 20).unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut picker = PriorityPicker::new(PIECES, strategy, 7);
    let mut availability = Availability::new(PIECES);
    let peers: Vec<Bitfield> = (0..PEERS)
        .map(|_| {
            let density = 10 + xorshift(&mut rng) % 81;
            let mut field = Bitfield::new(PIECES);
            for piece in layout.pieces() {
                if xorshift(&mut rng) % 100 < density {
                    field.insert(piece);
                }
            }
            availability.add_peer(&field);
            field
        })
        .collect();
    for piece in layout.pieces() {
        picker.availability_changed(piece, availability.count(piece));
        if xorshift(&mut rng) % 100 < 30 {
            picker.set_wanted(piece, false);
        }
    }
    picker.set_window(40_000..40_020);
    let in_progress = layout
        .pieces()
        .filter(|_| xorshift(&mut rng) % 100 < 1)
        .collect();
    Setup {
        picker,
        peers,
        in_progress,
    }
}

fn pick(setup: &mut Setup, peer: usize) -> Option<PieceIndex> {
    let view = PeerView {
        has: &setup.peers[peer],
        is_seed: false,
    };
    let in_progress = &setup.in_progress;
    setup.picker.pick(view, &mut |p| !in_progress.contains(&p))
}

fn report(name: &str, strategy: Strategy) {
    let mut setup = setup(strategy);
    let rounds = 1_000_000;
    let mut samples = Vec::with_capacity(rounds);
    let start = Instant::now();
    for i in 0..rounds {
        let t = Instant::now();
        black_box(pick(&mut setup, i % PEERS));
        samples.push(t.elapsed());
    }
    let total = start.elapsed();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "picker {name}: {PIECES} pieces x {PEERS} peers: p50 {:?}, p99 {:?}, {:.2}M picks/s (timing included), state {} bytes/piece (goals: p99 <= 2us, >= 1M/s, <= 16 B)",
        at(0.5),
        at(0.99),
        rounds as f64 / total.as_secs_f64() / 1e6,
        setup.picker.state_bytes_per_piece(),
    );
}

fn picker(c: &mut Criterion) {
    report("rarest-first", Strategy::RarestFirst);
    report("streaming", Strategy::Streaming);
    for (name, strategy) in [
        ("rarest_first", Strategy::RarestFirst),
        ("streaming", Strategy::Streaming),
    ] {
        let mut setup = setup(strategy);
        let mut peer = 0;
        c.bench_function(&format!("pick_100k_pieces_200_peers/{name}"), |b| {
            b.iter(|| {
                peer = (peer + 1) % PEERS;
                black_box(pick(&mut setup, peer))
            })
        });
    }
}

criterion_group!(benches, picker);
criterion_main!(benches);
