//! A torrent known only by its infohash: the metadata comes from a peer
//! over the same offers and channels, then the download starts on those
//! channels, with no new connection and no second `started`.

use std::time::Duration;

use super::world::{World, torrent};
use crate::driver::action::Action;
use crate::driver::signal::AnnounceEvent;
use crate::swarm::Event;

#[test]
fn a_peer_with_only_the_infohash_gets_the_metadata_then_the_file() {
    // 900 pieces: the dictionary spans two metadata pieces.
    let (info, content) = torrent(900 * 16 * 1024);
    let info_hash = info.info_hash();
    let mut world = World::new(2);
    world.add(0, &info, &content, true);
    let now = world.now;
    world.peers[1].machine.add_fetch(now, info_hash).unwrap();
    assert!(
        world.peers[1].machine.add_fetch(now, info_hash).is_err(),
        "twice"
    );
    let fetched = |w: &World| {
        w.peers[1].actions.iter().find_map(|(_, a)| match a {
            Action::MetadataFetched { result, .. } => Some(result.clone()),
            _ => None,
        })
    };
    world.run_for(Duration::from_secs(30), |w| fetched(w).is_some());
    assert_eq!(fetched(&world), Some(Ok(info.clone())));

    // The fetch announced as a leecher and stays, parked, its channel open.
    let announces = world.announces(1);
    let first = &announces[0].1;
    assert_eq!(first.event, Some(AnnounceEvent::Started));
    assert!(first.left > 0 && first.bitfield.is_none());
    assert!(world.peers[1].machine.has_torrent(&info_hash));
    world.settle();
    let links = world.peers[1].links.clone();
    assert_eq!(links.len(), 1, "the fetch's channel is kept");
    let opened = |w: &World| {
        w.peers[1]
            .actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::OpenOffer { .. } | Action::OpenAnswered { .. }))
            .count()
    };
    let opened_by_fetch = opened(&world);
    let connected = |w: &World| {
        w.peers[0]
            .events
            .iter()
            .filter(|e| matches!(e.event, Event::PeerConnected { .. }))
            .count()
    };
    assert_eq!(connected(&world), 1);

    // With the dictionary, the download starts on that channel: the
    // seeder sees no new connection, nothing is opened, and the tracker
    // hears no second `started` (nor a `stopped`).
    world.add(1, &info, &content, false);
    world.run_for(Duration::from_secs(60), |w| {
        w.heard(1, |e| matches!(e, Event::Piece { .. }))
    });
    assert!(
        world.peers[1].links.keys().eq(links.keys()),
        "the first piece comes on the fetch's channel"
    );
    world.run_for(Duration::from_secs(60), |w| {
        w.heard(1, |e| *e == Event::Completed)
    });
    assert_eq!(world.content(1, &info).unwrap(), content.to_vec());
    assert_eq!(opened(&world), opened_by_fetch, "no new connection");
    assert_eq!(connected(&world), 1, "the seeder saw one connection");
    let events: Vec<_> = world
        .announces(1)
        .into_iter()
        .filter_map(|(_, a)| a.event)
        .collect();
    assert_eq!(
        events,
        [AnnounceEvent::Started, AnnounceEvent::Completed],
        "one `started`, no `stopped`"
    );
}

#[test]
fn a_parked_torrent_is_dropped_by_remove_and_refuses_a_second_fetch() {
    let (mut world, info, _) = parked_fetch();
    let info_hash = info.info_hash();
    let now = world.now;
    assert!(world.peers[1].machine.add_fetch(now, info_hash).is_err());
    assert!(world.peers[1].machine.can_add(&info_hash));
    assert!(world.peers[1].machine.remove_torrent(now, info_hash));
    world.settle();
    assert!(world.peers[1].links.is_empty(), "its channel is closed");
    let last = world.announces(1).last().map(|(_, a)| a.event);
    assert_eq!(last, Some(Some(AnnounceEvent::Stopped)));
}

#[test]
fn a_parked_torrent_whose_store_holds_everything_completes_at_once() {
    let (mut world, info, content) = parked_fetch();
    // The content was already on disk: the download is over when it starts.
    world.add(1, &info, &content, true);
    assert!(world.heard(1, |e| *e == Event::Completed));
    let events: Vec<_> = world
        .announces(1)
        .into_iter()
        .filter_map(|(_, a)| a.event)
        .collect();
    assert_eq!(events, [AnnounceEvent::Started, AnnounceEvent::Completed]);
}

/// Peer 1 fetched the metadata of a small torrent peer 0 seeds, and the
/// torrent is parked: known, not yet added.
fn parked_fetch() -> (World, crate::metainfo::Info, bytes::Bytes) {
    let (info, content) = torrent(64 * 16 * 1024);
    let mut world = World::new(2);
    world.add(0, &info, &content, true);
    let now = world.now;
    world.peers[1]
        .machine
        .add_fetch(now, info.info_hash())
        .unwrap();
    world.run_for(Duration::from_secs(30), |w| {
        w.peers[1]
            .actions
            .iter()
            .any(|(_, a)| matches!(a, Action::MetadataFetched { .. }))
    });
    (world, info, content)
}
