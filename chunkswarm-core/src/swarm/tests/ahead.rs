//! Fetching past the playback window: from peers once the window is
//! verified and the link has room, never from the origin.

use super::*;

const PIECE: u32 = 16_384;

/// A streaming viewer of 40 pieces playing at a piece per second from the
/// start, so that its 20 s window is pieces 0-20, beside one seeder.
fn viewer_beside_a_seeder(config: SwarmConfig) -> (Net, usize, usize) {
    let (mut net, info) = Net::new(40 * PIECE as usize, PIECE);
    let seeder = net.add(&info, true, false, no_http());
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        ..config
    };
    let viewer = net.add(&info, false, false, config);
    let playback = Playback {
        position: 0,
        bitrate: u64::from(PIECE),
    };
    let now = net.now;
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    net.connect(seeder, viewer);
    (net, seeder, viewer)
}

/// Pieces the viewer holds after 10 s.
fn held_after(headroom: Option<f64>) -> u32 {
    let mut config = no_http();
    config.streaming.fetch_ahead_headroom = headroom;
    let (mut net, _, viewer) = viewer_beside_a_seeder(config);
    net.run_until(Duration::from_secs(10), |n| {
        n.nodes[viewer].swarm.is_complete()
    });
    net.nodes[viewer].swarm.have().count_ones()
}

#[test]
fn a_viewer_with_room_on_its_link_fetches_past_its_window_from_peers() {
    // The test network delivers far faster than a piece per second.
    assert_eq!(held_after(Some(3.0)), 40);
    // Without fetching ahead, or on a link not yet shown to have the room,
    // the window is all it holds.
    assert_eq!(held_after(None), 21);
    assert_eq!(held_after(Some(1e12)), 21);
}

#[test]
fn a_piece_past_the_window_whose_peer_attempts_ran_out_waits_for_the_window() {
    let config = SwarmConfig {
        // Only the window is fetched, so the piece past it is ours to mark.
        streaming: StreamingConfig {
            fetch_ahead_headroom: None,
            ..StreamingConfig::default()
        },
        ..SwarmConfig::default()
    };
    let (mut net, seeder, viewer) = viewer_beside_a_seeder(config);
    net.held_http = Some(Vec::new());
    net.run_until(Duration::from_secs(10), |n| {
        n.nodes[viewer].swarm.have().count_ones() == 21
    });
    net.disconnect(seeder, viewer);
    let past = net.nodes[viewer].swarm.layout.piece(30).unwrap();
    let swarm = &mut net.nodes[viewer].swarm;
    swarm.note_attempt_failed(past);
    swarm.note_attempt_failed(past);
    swarm.note_attempt_failed(past);
    net.held_http = Some(Vec::new());
    // Short of the starving fallback, which takes any piece.
    net.run_until(Duration::from_secs(5), |_| false);
    let fetched = net.held_http.take().unwrap_or_default();
    assert!(fetched.is_empty(), "{fetched:?}");
    // Once the window reaches it, it is fetched.
    let now = net.now;
    let playback = Playback {
        position: 30 * u64::from(PIECE),
        bitrate: u64::from(PIECE),
    };
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    net.held_http = Some(Vec::new());
    net.drain(viewer);
    let offset = net.nodes[viewer].swarm.layout.piece_offset(past);
    let fetched = net.held_http.take().unwrap_or_default();
    assert!(
        fetched.iter().any(|(_, _, range)| range.contains(&offset)),
        "{fetched:?}"
    );
}
