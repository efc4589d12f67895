//! Small runs of every scenario: the invariants the full benchmarks report
//! on must hold at any size, and a seed must replay exactly.
#![allow(clippy::unwrap_used)]

use chunkswarm_benches::sim::{Introductions, Params, Report, Simulation};

fn run(name: &str, seed: u64, peers: usize, mib: u64) -> Report {
    let mut params = Params::scenario(name, seed).unwrap();
    params.peers = peers;
    params.file_bytes = mib << 20;
    Simulation::new(params).run()
}

fn assert_sound(report: &Report) {
    assert_eq!(report.incomplete, 0, "{report:#?}");
    assert_eq!(report.unverified_bytes_delivered, 0, "{report:#?}");
    assert_eq!(report.banned_honest, 0, "{report:#?}");
    assert!(report.offload > 0.0 && report.offload <= 1.0, "{report:#?}");
}

#[test]
fn flash_crowd_completes_and_replays_exactly() {
    let first = run("flash-crowd", 3, 12, 8);
    assert_sound(&first);
    assert_eq!(first.completion_s.map(|c| c.max > 0.0), Some(true));
    let again = run("flash-crowd", 3, 12, 8);
    assert_eq!(
        serde_json::to_value(Report {
            wall_s: 0.0,
            ..first
        })
        .unwrap(),
        serde_json::to_value(Report {
            wall_s: 0.0,
            ..again
        })
        .unwrap()
    );
}

#[test]
fn corrupt_peers_are_banned_and_nothing_unverified_is_delivered() {
    let report = run("corrupt", 5, 20, 8);
    assert_sound(&report);
    assert!(
        report.corrupt_peers > 0,
        "the seed must yield corrupt peers"
    );
    assert_eq!(report.banned_corrupt, report.corrupt_peers, "{report:#?}");
    // The corrupt blocks failed their pieces' hashes and were thrown away.
    assert!(report.wasted_bytes > 0, "{report:#?}");
}

#[test]
fn churn_leaves_every_remaining_peer_complete() {
    let report = run("churn", 7, 15, 8);
    assert_sound(&report);
    assert!(report.peers > 15, "churn brought newcomers: {report:#?}");
}

#[test]
fn streaming_viewers_start_and_play() {
    let report = run("streaming", 9, 6, 8);
    assert_sound(&report);
    let startup = report.startup_s.unwrap();
    assert!(startup.max < 10.0, "{report:#?}");
    assert!(report.http_only_startup_s.is_some());
}

#[test]
fn origin_claims_keep_a_sparse_crowd_from_paying_twice() {
    let crowd = |claim_ttl_s: u64| {
        let mut params = Params::scenario("flash-crowd", 11).unwrap();
        params.peers = 30;
        params.file_bytes = 24 << 20;
        params.connect_to = 4;
        params.swarm.http.claim_ttl = std::time::Duration::from_secs(claim_ttl_s);
        Simulation::new(params).run()
    };
    let with = crowd(30);
    let without = crowd(0);
    assert_sound(&with);
    assert_sound(&without);
    eprintln!(
        "origin bytes per file: {:.3} with claims, {:.3} without",
        with.origin_bytes_per_file, without.origin_bytes_per_file
    );
    assert!(
        with.origin_bytes_per_file <= 1.2
            && with.origin_bytes_per_file < without.origin_bytes_per_file,
        "{with:#?}\n{without:#?}"
    );
}

#[test]
fn peers_meet_through_the_tracker_either_way_and_fill_sparse_overlays() {
    for introductions in [Introductions::Tracker, Introductions::Random] {
        let mut params = Params::scenario("streaming", 4).unwrap();
        params.peers = 10;
        params.file_bytes = 8 << 20;
        // Few connections each: re-announces must keep everyone reachable.
        params.connect_to = 3;
        params.introductions = introductions;
        let report = Simulation::new(params).run();
        assert_sound(&report);
        assert_eq!(report.introductions, introductions);
        assert!(report.p2p_bytes > 0, "{report:#?}");
    }
}

#[test]
fn seeking_viewers_resume_at_their_new_position() {
    let mut params = Params::scenario("vod", 2).unwrap();
    params.peers = 8;
    params.file_bytes = 16 << 20;
    params.join_window = std::time::Duration::from_secs(10);
    params.seek_fraction = 1.0;
    let report = Simulation::new(params).with_detail().run();
    assert_sound(&report);
    assert_eq!(report.seekers, 8, "{report:#?}");
    let seek = |p: &&chunkswarm_benches::sim::PeerDetail| p.seeks && !p.http_only;
    assert_eq!(report.by_peer.iter().filter(seek).count(), 8);
    let seeks = report.seek_to_play_s.unwrap();
    assert!(seeks.max < 10.0, "{report:#?}");
    // Every viewer seeks: no one is left for the non-seekers' stall.
    assert!(report.stall_s.is_none());
}

#[test]
fn two_windows_report_each_peers_share_from_peers() {
    let report = Simulation::new(Params::scenario("two-windows", 1).unwrap()).run();
    assert_sound(&report);
    assert_eq!(report.p2p_share_by_peer.len(), 2, "{report:#?}");
    // The first window has no peer for its first 4 s; later it takes from
    // the second only the pieces that one fetched from the origin ahead of it.
    assert!(report.p2p_share_by_peer[0] < 0.1, "{report:#?}");
    // The second window's first rescues, which the slow origin would bring
    // late, are raced by the first window as soon as they meet, and the
    // pieces nobody holds it leaves to the first, which plays them first.
    assert!(report.p2p_share_by_peer[1] >= 0.99, "{report:#?}");
    assert!(report.origin_bytes_per_file <= 1.05, "{report:#?}");
}

#[test]
fn the_detail_adds_up_to_the_report_and_leaves_the_run_unchanged() {
    let params = || {
        let mut params = Params::scenario("streaming", 9).unwrap();
        params.peers = 8;
        params.file_bytes = 8 << 20;
        params
    };
    let plain = Simulation::new(params()).run();
    let detailed = Simulation::new(params()).with_detail().run();
    assert!(plain.by_peer.is_empty() && plain.timeline.is_empty());
    assert_eq!(
        plain.http_bytes, detailed.http_bytes,
        "detail changed the run"
    );
    assert_eq!(
        plain.p2p_bytes, detailed.p2p_bytes,
        "detail changed the run"
    );

    let swarm: Vec<_> = detailed.by_peer.iter().filter(|p| !p.http_only).collect();
    assert_eq!(swarm.len(), detailed.peers);
    assert_eq!(
        detailed.by_peer.len(),
        detailed.peers + 1,
        "the reference viewer"
    );
    let fetched = |f: &chunkswarm_benches::sim::OriginFetchCounts| {
        f.fast_start + f.deadline + f.retries_exhausted + f.no_peer_source
    };
    let by_peer: u64 = swarm.iter().map(|p| fetched(&p.origin_fetches)).sum();
    assert_eq!(by_peer, fetched(&detailed.origin_fetches));
    for peer in &swarm {
        assert!(
            peer.startup_s.is_some() && peer.completion_s.is_some(),
            "{peer:?}"
        );
        assert!(peer.p2p_share.is_some_and(|s| (0.0..=1.0).contains(&s)));
    }

    let timeline = &detailed.timeline;
    assert!(!timeline.is_empty());
    assert!(timeline.windows(2).all(|w| w[0].t_s < w[1].t_s));
    for sample in timeline {
        assert!(sample.downloading <= sample.present);
        assert!(sample.without_pieces <= sample.downloading, "{sample:?}");
        assert!(
            (0.0..=1.0 + 1e-9).contains(&sample.peer_upload_use),
            "{sample:?}"
        );
    }
    let last = timeline.last().unwrap();
    assert_eq!(last.without_pieces, 0, "every viewer completes: {last:?}");
    let uploaded: u64 = swarm.iter().map(|p| p.uploaded_bytes).sum();
    assert!(
        uploaded >= detailed.p2p_bytes,
        "peers sent at least what peers verified"
    );
}
