//! A torrent known only by its infohash: the metadata comes from a peer
//! over the same offers and channels, then the torrent runs as any other.

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

    // The fetch announced as a leecher, then left the swarm.
    let announces = world.announces(1);
    let first = &announces[0].1;
    assert_eq!(first.event, Some(AnnounceEvent::Started));
    assert!(first.left > 0 && first.bitfield.is_none());
    assert_eq!(
        announces.last().unwrap().1.event,
        Some(AnnounceEvent::Stopped)
    );
    assert!(!world.peers[1].machine.has_torrent(&info_hash));
    world.settle();
    assert!(
        world.peers[1].links.is_empty(),
        "the fetch's channels stay open"
    );

    // With the dictionary, the torrent is added and downloads as usual.
    world.add(1, &info, &content, false);
    world.run_for(Duration::from_secs(60), |w| {
        w.heard(1, |e| *e == Event::Completed)
    });
    assert_eq!(world.content(1, &info).unwrap(), content.to_vec());
}
