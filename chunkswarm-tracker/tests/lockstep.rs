//! A client that sends its next message only after reading one (as
//! aquatic's load tester does), while another floods it with large offers:
//! the tracker keeps reading it while its writes wait, so neither side
//! stalls and the connection stays open.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use chunkswarm_tracker::{Config, Limits};
use common::{TestTracker, announce, id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockstep_client_under_a_flood_is_served_without_stalling() {
    let config = Config {
        limits: Limits {
            ip_requests_per_second: 0,
            ..Limits::default()
        },
        ..Config::default()
    };
    let t = TestTracker::start(config).await;
    let ih = id(0x71);
    let sdp = "s".repeat(50_000);
    let mut lockstep = t.client().await;
    lockstep.send(&announce(&ih, &id(1), &[])).await;
    lockstep.recv().await;

    // The flood: large offers for the lock-step client, as fast as they go.
    let mut flooder = t.client().await;
    let flood_sdp = sdp.clone();
    let ih_flood = ih.clone();
    let flood = tokio::spawn(async move {
        for n in 0..2_000u32 {
            let offer_id = common::bin(std::array::from_fn(|i| (n >> (i % 4 * 8)) as u8));
            flooder
                .send(&announce(&ih_flood, &id(2), &[(offer_id, &flood_sdp)]))
                .await;
            if flooder.next_text(Duration::from_secs(5)).await.is_none() {
                break;
            }
        }
    });

    // Lock-step: each large message only after reading one.
    let started = Instant::now();
    for n in 0..300u32 {
        let offer_id = common::bin(std::array::from_fn(|i| 0x80 ^ (n >> (i % 4 * 8)) as u8));
        lockstep
            .send(&announce(&ih, &id(1), &[(offer_id, &sdp)]))
            .await;
        assert!(
            lockstep.next_text(Duration::from_secs(5)).await.is_some(),
            "stalled or closed after {n} rounds"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    flood.abort();
}
