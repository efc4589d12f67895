//! The first pieces after the fast start: left to neighbours that hold
//! them while they can still bring them in time (see `StartupTrust`).

use super::*;

const PIECE: u32 = 65_536;

/// Origin fetches for playback deadlines by a viewer that plays from the
/// start at a piece per 2 s beside `holders` seeders, after its fast start
/// came in from the origin in 300 ms.
fn rescues_after_the_fast_start(holders: usize, trust: Option<StartupTrust>) -> u32 {
    let (mut net, info) = Net::new(8 * PIECE as usize, PIECE);
    let seeders: Vec<usize> = (0..holders)
        .map(|_| net.add(&info, true, false, no_http()))
        .collect();
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        http: HttpConfig {
            first_piece_from_http: true,
            ..HttpConfig::default()
        },
        streaming: StreamingConfig {
            startup_trust: trust,
            ..StreamingConfig::default()
        },
        ..SwarmConfig::default()
    };
    let viewer = net.add(&info, false, false, config);
    net.held_http = Some(Vec::new());
    let playback = Playback {
        position: 0,
        bitrate: u64::from(PIECE / 2),
    };
    let now = net.now;
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    for seeder in seeders {
        net.connect(seeder, viewer);
    }
    // The neighbours connect and unchoke us while the fast start is out.
    net.run_until(Duration::from_millis(300), |_| false);
    let fast_start = net.held_http.take().unwrap_or_default();
    assert_eq!(fast_start.len(), 1, "{fast_start:?}");
    net.held_http = Some(Vec::new());
    net.answer_held(fast_start[0].clone());
    net.drain(viewer);
    // Later origin fetches are answered at once.
    net.held_http = None;
    net.run_until(Duration::from_secs(10), |n| {
        n.nodes[viewer].swarm.is_complete()
    });
    assert!(net.nodes[viewer].swarm.is_complete());
    let fetches = net.nodes[viewer].swarm.stats(net.now).origin_fetches;
    assert_eq!(fetches.fast_start, 1, "{fetches:?}");
    fetches.deadline
}

#[test]
fn after_the_fast_start_two_neighbours_holding_the_next_piece_bring_it() {
    let trust = Some(StartupTrust::default());
    assert_eq!(rescues_after_the_fast_start(2, trust), 0);
    // Without the trust, the next piece is due sooner than a rescue lead
    // at a peer rate not yet measured: the origin takes it too.
    assert!(rescues_after_the_fast_start(2, None) > 0);
}

#[test]
fn a_single_neighbour_holding_the_next_piece_is_not_trusted_with_it() {
    let trust = Some(StartupTrust::default());
    assert!(rescues_after_the_fast_start(1, trust) > 0);
}
