//! The tracker's swarm facts steer what the origin is paid for.

use super::*;

/// The pieces a node asked the origin for, as held by `net.held_http`.
fn fetched(net: &Net, info: &Info, node: usize) -> BTreeSet<u32> {
    let layout = info.layout();
    net.held_http
        .iter()
        .flatten()
        .filter(|(i, _, _)| *i == node)
        .filter_map(|(_, _, range)| layout.piece_at_offset(range.start))
        .map(|p| p.get())
        .collect()
}

/// The default engine with the facts in use.
fn with_facts() -> SwarmConfig {
    SwarmConfig {
        http: HttpConfig {
            use_swarm_facts: true,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    }
}

/// A lone leecher of 8 pieces of 16 KiB whose origin answers are held.
fn lone_leecher(config: SwarmConfig) -> (Net, Info, usize) {
    let (mut net, info) = Net::new(8 * 16_384, 16_384);
    let leecher = net.add(&info, false, false, config);
    net.held_http = Some(Vec::new());
    (net, info, leecher)
}

/// Pieces 0-3 held elsewhere in the swarm, 4-7 held by nobody, of which
/// the tracker names us for piece 5.
fn facts() -> SwarmFacts {
    SwarmFacts {
        peers: 3,
        seeders: 0,
        first: 0,
        holders: vec![1, 1, 1, 1, 0, 0, 0, 0],
        fetch: vec![5],
    }
}

#[test]
fn the_origin_brings_only_the_unheld_piece_the_tracker_names_us_for() {
    // Without facts, a lone leecher takes pieces from the origin once its
    // patience runs out.
    let (mut net, info, leecher) = lone_leecher(with_facts());
    net.run_until(Duration::from_secs(5), |_| false);
    assert!(!fetched(&net, &info, leecher).is_empty());
    // Every piece held elsewhere: none from the origin, unless the facts
    // are switched off.
    let all_held = SwarmFacts {
        holders: vec![1; 8],
        fetch: Vec::new(),
        ..facts()
    };
    for (config, none) in [(with_facts(), true), (SwarmConfig::default(), false)] {
        let (mut net, info, leecher) = lone_leecher(config);
        let now = net.now;
        net.nodes[leecher]
            .swarm
            .handle_swarm_facts(now, all_held.clone());
        net.run_until(Duration::from_secs(5), |_| false);
        assert_eq!(fetched(&net, &info, leecher).is_empty(), none);
    }

    let (mut net, info, leecher) = lone_leecher(with_facts());
    let now = net.now;
    net.nodes[leecher].swarm.handle_swarm_facts(now, facts());
    assert_eq!(net.nodes[leecher].swarm.swarm_facts(), Some(&facts()));
    net.run_until(Duration::from_secs(5), |_| false);
    assert_eq!(fetched(&net, &info, leecher), BTreeSet::from([5]));
    let counts = net.nodes[leecher].swarm.stats(net.now).origin_fetches;
    assert_eq!(counts.no_peer_source, 1, "{counts:?}");
}

#[test]
fn a_starving_download_outgrows_stale_facts() {
    let (mut net, info, leecher) = lone_leecher(with_facts());
    let now = net.now;
    net.nodes[leecher].swarm.handle_swarm_facts(now, facts());
    // Past the starving fallback nobody brought the pieces held elsewhere:
    // the origin takes them too.
    let fallback = HttpConfig::default().starving_fallback;
    net.run_until(fallback + Duration::from_secs(2), |_| false);
    let taken = fetched(&net, &info, leecher);
    assert!(taken.len() > 1, "{taken:?}");
}

#[test]
fn a_viewer_fetches_its_named_pieces_within_its_window_only() {
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        ..with_facts()
    };
    let (mut net, info, viewer) = lone_leecher(config);
    let now = net.now;
    // Twenty seconds of playback cover pieces 0-4.
    let playback = Playback {
        position: 0,
        bitrate: 16_384 / 5,
    };
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    let facts = SwarmFacts {
        fetch: vec![2, 7],
        holders: vec![0; 8],
        ..facts()
    };
    net.nodes[viewer].swarm.handle_swarm_facts(now, facts);
    net.run_until(Duration::from_secs(1), |_| false);
    // The playhead's piece is fetched first, alone: the named piece would
    // share the viewer's link with it and hold playback back.
    assert_eq!(fetched(&net, &info, viewer), BTreeSet::from([0]));
    let held = net.held_http.replace(Vec::new()).unwrap_or_default();
    for fetch in held {
        net.answer_held(fetch);
    }
    net.run_until(Duration::from_secs(2), |_| false);
    // Then piece 2 follows at once, though patience has not run out and
    // playback is still urgent; piece 7 waits.
    assert!(fetched(&net, &info, viewer).contains(&2));
    assert!(!fetched(&net, &info, viewer).contains(&7));
}

#[test]
fn facts_out_of_range_are_cut_to_the_content() {
    let (mut net, _, leecher) = lone_leecher(with_facts());
    let now = net.now;
    let facts = SwarmFacts {
        first: 6,
        holders: vec![1; 100],
        fetch: vec![900, 7, 7, 3],
        ..facts()
    };
    net.nodes[leecher].swarm.handle_swarm_facts(now, facts);
    let kept = net.nodes[leecher].swarm.swarm_facts().unwrap();
    assert_eq!(kept.holders, vec![1, 1]);
    assert_eq!(kept.fetch, vec![3, 7]);
}
