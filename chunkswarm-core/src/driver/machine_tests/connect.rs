//! Offer and answer, a transfer over the fake channels, and peer churn.

use std::time::Duration;

use super::world::{World, torrent};
use crate::driver::action::Action;
use crate::driver::signal::AnnounceEvent;
use crate::swarm::Event;

#[test]
fn an_offer_and_its_answer_connect_two_peers_and_the_file_moves() {
    let (info, content) = torrent(200_000);
    let mut world = World::new(2);
    world.add(0, &info, &content, true);
    world.run_for(Duration::from_secs(1), |_| false);
    world.add(1, &info, &content, false);
    world.run_for(Duration::from_secs(30), |w| {
        w.heard(1, |e| *e == Event::Completed)
    });
    assert!(world.heard(1, |e| *e == Event::Completed));
    assert_eq!(world.content(1, &info).unwrap(), content.to_vec());
    // The newcomer offered, the seeder answered, and each opened one end.
    let first = &world.announces(1)[0].1;
    assert_eq!(first.event, Some(AnnounceEvent::Started));
    assert_eq!(first.offers.len(), 5);
    let opened = |i: usize| {
        world.peers[i]
            .actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::OpenOffer { .. } | Action::OpenAnswered { .. }))
            .count()
    };
    assert_eq!((opened(0), opened(1)), (1, 1));
    assert!(
        world.peers[0]
            .actions
            .iter()
            .any(|(_, a)| matches!(a, Action::AcceptOffer { .. }))
    );
    // `completed` reaches the tracker once the last piece is in.
    assert!(
        world
            .announces(1)
            .iter()
            .any(|(_, a)| a.event == Some(AnnounceEvent::Completed) && a.left == 0)
    );
}

#[test]
fn peers_leaving_and_joining_mid_download_do_not_stop_the_rest() {
    let (info, content) = torrent(600_000);
    let info_hash = info.info_hash();
    let mut world = World::new(4);
    world.add(0, &info, &content, true);
    world.add(1, &info, &content, false);
    world.add(2, &info, &content, false);
    world.run_for(Duration::from_millis(300), |_| false);
    assert!(!world.peers[1].links.is_empty(), "peer 1 never connected");
    // Peer 2 leaves: `stopped` goes out and its channels close on both ends.
    let now = world.now;
    assert!(world.peers[2].machine.remove_torrent(now, info_hash));
    world.settle();
    assert!(world.peers[2].links.is_empty());
    let stopped = world.announces(2).last().unwrap().1.event;
    assert_eq!(stopped, Some(AnnounceEvent::Stopped));
    world.run_for(Duration::from_secs(1), |_| false);
    assert!(
        world
            .peers
            .iter()
            .all(|p| p.links.values().all(|(j, _)| *j != 2)),
        "a channel to the peer that left stayed open"
    );
    // Peer 3 joins late; the remaining leechers both finish.
    world.add(3, &info, &content, false);
    world.run_for(Duration::from_secs(120), |w| {
        w.heard(1, |e| *e == Event::Completed) && w.heard(3, |e| *e == Event::Completed)
    });
    assert_eq!(world.content(1, &info).unwrap(), content.to_vec());
    assert_eq!(world.content(3, &info).unwrap(), content.to_vec());
    assert!(!world.heard(2, |e| *e == Event::Completed));
}
