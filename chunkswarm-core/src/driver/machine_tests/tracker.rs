//! The tracker dropping and coming back, and refusing an announce.

use std::time::Duration;

use super::world::{World, torrent};
use crate::driver::action::Action;
use crate::driver::io::TrackerError;
use crate::driver::signal::{AnnounceEvent, SignalIn, SignalOut};
use crate::swarm::Event;

fn lost() -> TrackerError {
    TrackerError::Lost {
        url: "ws://127.0.0.1:1/announce".into(),
    }
}

#[test]
fn with_the_tracker_down_nothing_is_announced_and_a_reconnection_announces_anew() {
    let (info, content) = torrent(50_000);
    let mut world = World::new(1);
    world.add(0, &info, &content, false);
    world.run_for(Duration::from_secs(1), |_| false);
    assert_eq!(world.announces(0).len(), 1);
    world.tracker.up = false;
    world.tell(0, SignalIn::Disconnected(lost()));
    assert!(world.heard(0, |e| *e == Event::TrackerFailed { error: lost() }));
    let down_at = world.now;
    // Lonely leechers announce every 15 s; down, not once in ten minutes.
    world.run_for(Duration::from_secs(600), |_| false);
    let actions_while_down = world.peers[0].actions.iter().filter(|(at, a)| {
        *at > down_at && matches!(a, Action::Signal(_) | Action::MakeOffers { .. })
    });
    assert_eq!(actions_while_down.count(), 0);
    world.tracker.up = true;
    world.tell(0, SignalIn::Reconnected);
    assert!(world.heard(0, |e| *e == Event::TrackerConnected));
    let back_at = world.now;
    world.run_for(Duration::from_secs(1), |_| false);
    let announces = world.announces(0);
    let (at, again) = announces.last().unwrap();
    assert_eq!(
        *at,
        back_at,
        "announced {:?} after reconnecting",
        *at - back_at
    );
    // The tracker forgot us with the old connection: `started` again.
    assert_eq!(again.event, Some(AnnounceEvent::Started));
    assert_eq!(again.offers.len(), 5);
}

#[test]
fn offers_made_while_the_tracker_dropped_are_dropped_and_announcing_resumes() {
    let (info, _) = torrent(50_000);
    let info_hash = info.info_hash();
    let mut world = World::new(1);
    let now = world.now;
    let machine = &mut world.peers[0].machine;
    machine
        .add_torrent(
            now,
            info,
            crate::piece_map::Bitfield::new(4),
            Default::default(),
            false,
        )
        .unwrap();
    machine.handle_timeout(now);
    let ids = loop {
        match machine.poll_output() {
            Some(Action::MakeOffers { ids, .. }) => break ids,
            Some(_) => {}
            None => panic!("no offers asked for"),
        }
    };
    // The tracker drops while the offers are being made.
    machine.handle_signal(now, 0, SignalIn::Disconnected(lost()));
    let made = ids.iter().map(|id| (*id, "sdp".to_owned())).collect();
    machine.handle_offers_made(now, info_hash, made);
    let actions: Vec<Action> = std::iter::from_fn(|| machine.poll_output()).collect();
    let dropped = actions
        .iter()
        .filter(|a| matches!(a, Action::DropOffer { .. }))
        .count();
    assert_eq!(dropped, ids.len());
    assert!(!actions.iter().any(|a| matches!(a, Action::Signal(_))));
    // Back: the torrent announces again at once, with fresh offers.
    let later = now + Duration::from_secs(3);
    machine.handle_signal(later, 0, SignalIn::Reconnected);
    assert!(machine.poll_timeout().is_some_and(|at| at <= later));
    machine.handle_timeout(later);
    let actions: Vec<Action> = std::iter::from_fn(|| machine.poll_output()).collect();
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::MakeOffers { .. })),
        "{actions:?}"
    );
}

#[test]
fn a_refused_announce_is_reported_for_that_torrent_alone() {
    let (refused, content) = torrent(50_000);
    let (welcome, other) = torrent(70_000);
    let mut world = World::new(1);
    world
        .tracker
        .refuse
        .insert(refused.info_hash(), "torrent not allowed".into());
    world.add(0, &refused, &content, false);
    world.add(0, &welcome, &other, false);
    world.run_for(Duration::from_secs(1), |_| false);
    let failed: Vec<_> = world.peers[0]
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::TrackerFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].info_hash, refused.info_hash());
    let Event::TrackerFailed { error } = &failed[0].event else {
        unreachable!()
    };
    assert_eq!(
        *error,
        TrackerError::Refused {
            reason: "torrent not allowed".into()
        }
    );
}

/// What `machine` asks for over `secs` seconds, a step a second, with the
/// playhead (at 4,000 bytes a second) set at each step by `position(step)`.
fn play(
    machine: &mut crate::driver::machine::Machine,
    now: &mut web_time::Instant,
    info_hash: crate::metainfo::InfoHash,
    secs: u64,
    position: &dyn Fn(u64) -> u64,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for step in 0..secs {
        *now += Duration::from_secs(1);
        let playback = crate::swarm::Playback {
            position: position(step),
            bitrate: 4_000,
        };
        machine.set_playback(*now, info_hash, Some(playback));
        machine.handle_timeout(*now);
        actions.extend(std::iter::from_fn(|| machine.poll_output()));
    }
    actions
}

/// The sizes of the sets of offers asked for.
fn offers_asked(actions: &[Action]) -> Vec<usize> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::MakeOffers { ids, .. } => Some(ids.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_seek_announces_with_offers_even_at_the_connection_limit() {
    // 160 KB in 16 KiB pieces; no connections wanted, so that the torrent
    // is at its limit from the start.
    let (info, _) = torrent(160_000);
    let info_hash = info.info_hash();
    let mut config = crate::driver::config::DriverConfig::seeded(7);
    config.max_connections = 0;
    let mut machine = crate::driver::machine::Machine::new(config, true, true);
    let mut now = super::world::epoch();
    let pieces = crate::piece_map::Bitfield::new(10);
    machine
        .add_torrent(now, info, pieces, Default::default(), false)
        .unwrap();
    let m = &mut machine;
    // Steady playback, then a stall shorter than a piece of playback: only
    // the first, plain announce.
    let steady = play(m, &mut now, info_hash, 4, &|step| step * 4_000);
    assert!(offers_asked(&steady).is_empty(), "{steady:?}");
    assert!(steady.iter().any(|a| matches!(a, Action::Signal(_))));
    let stalled = play(m, &mut now, info_hash, 3, &|_| 12_000);
    assert!(offers_asked(&stalled).is_empty(), "{stalled:?}");
    // A seek far ahead: an announce with a full set of offers at once.
    let seek = play(m, &mut now, info_hash, 1, &|_| 120_000);
    let ids = seek
        .iter()
        .find_map(|a| match a {
            Action::MakeOffers { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .unwrap_or_default();
    assert_eq!(ids.len(), 5, "{seek:?}");
    let made = ids.iter().map(|id| (*id, "sdp".to_owned())).collect();
    m.handle_offers_made(now, info_hash, made);
    let sent: Vec<Action> = std::iter::from_fn(|| m.poll_output()).collect();
    assert!(sent.iter().any(
        |a| matches!(a, Action::Signal(SignalOut::Announce(announce)) if announce.offers.len() == 5)
    ));
    // Seeking back at once waits out five seconds since the last; playing
    // on from there brings no more.
    let back = play(m, &mut now, info_hash, 3, &|step| 40_000 + step * 4_000);
    assert!(offers_asked(&back).is_empty(), "{back:?}");
    let later = play(m, &mut now, info_hash, 3, &|step| 52_000 + step * 4_000);
    assert_eq!(offers_asked(&later), [5], "{later:?}");
}
