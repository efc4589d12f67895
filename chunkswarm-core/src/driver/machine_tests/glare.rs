//! Glare: two peers offer to each other at once and each answers the
//! other's offer before seeing an answer to its own.

use std::time::Duration;

use super::world::{World, torrent};
use crate::driver::action::Action;
use crate::driver::signal::SignalOut;
use crate::swarm::Event;

#[test]
fn in_glare_both_peers_keep_the_connection_offered_by_the_smaller_peer_id() {
    let (info, content) = torrent(100_000);
    let mut world = World::new(2);
    // First round: the connection fails for both at the same instant, so
    // both announce again (with offers) together after the 5 s backoff.
    world.links_work = false;
    world.add(0, &info, &content, false);
    world.add(1, &info, &content, false);
    world.run_for(Duration::from_secs(1), |_| false);
    assert!(world.heard(0, |e| matches!(e, Event::ConnectFailed { .. })));
    assert!(world.heard(1, |e| matches!(e, Event::ConnectFailed { .. })));
    world.links_work = true;
    let round_two = world.now;
    world.run_for(Duration::from_secs(10), |_| false);
    // Glare happened: each answered the other's offer.
    for i in 0..2 {
        let answered = world.peers[i]
            .sent
            .iter()
            .any(|(at, m)| *at > round_two && matches!(m, SignalOut::Answer { .. }));
        assert!(answered, "peer {i} answered no offer in the second round");
    }
    // One connection, the same one on both sides.
    let (small, large) = if world.peers[0].id < world.peers[1].id {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(
        world.peers[small].links.len(),
        1,
        "{:?}",
        world.peers[small].links
    );
    assert_eq!(
        world.peers[large].links.len(),
        1,
        "{:?}",
        world.peers[large].links
    );
    let (remote, remote_key) = *world.peers[small].links.values().next().unwrap();
    assert_eq!(remote, large);
    assert_eq!(world.peers[large].links[&remote_key].0, small);
    // The smaller id opened its own offer and gave up its answer; the larger
    // dropped its own offer once the smaller's answer came.
    let after = |i: usize, wanted: fn(&Action) -> bool| {
        world.peers[i]
            .actions
            .iter()
            .any(|(at, a)| *at > round_two && wanted(a))
    };
    assert!(after(small, |a| matches!(a, Action::OpenOffer { .. })));
    assert!(after(small, |a| matches!(a, Action::Abandon { .. })));
    assert!(!after(large, |a| matches!(a, Action::OpenOffer { .. })));
    assert!(after(large, |a| matches!(a, Action::DropOffer { .. })));
    // And the connection carries the torrent.
    world.run_for(Duration::from_secs(5), |_| false);
    let peers = world.peers[small]
        .machine
        .peers(world.now, info.info_hash());
    assert_eq!(peers.unwrap().len(), 1);
}
