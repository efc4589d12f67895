//! Connections that fail or never open, offers nobody answers, and the
//! backoff before announcing again.

use std::time::Duration;

use super::world::{World, torrent};
use crate::driver::action::Action;
use crate::driver::io::ConnectError;
use crate::swarm::Event;

fn connect_failures(world: &World, i: usize) -> Vec<(ConnectError, Duration)> {
    world.peers[i]
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ConnectFailed {
                error, retry_in, ..
            } => Some((error.clone(), *retry_in)),
            _ => None,
        })
        .collect()
}

#[test]
fn failed_connections_are_retried_after_a_doubling_backoff() {
    let (info, content) = torrent(50_000);
    let mut world = World::new(2);
    world.links_work = false;
    world.add(0, &info, &content, true);
    world.add(1, &info, &content, false);
    world.run_for(Duration::from_secs(16), |_| false);
    let failures = connect_failures(&world, 1);
    let backoffs: Vec<Duration> = failures.iter().map(|(_, b)| *b).collect();
    assert_eq!(
        backoffs[..2],
        [Duration::from_secs(5), Duration::from_secs(10)],
        "{failures:?}"
    );
    // Each failure brings the next announce to 5 s, then 10 s, after it.
    let announces = world.announces(1);
    let gaps: Vec<Duration> = announces.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let slack = Duration::from_millis(100);
    assert!(
        gaps[0] >= Duration::from_secs(5) && gaps[0] <= Duration::from_secs(5) + slack,
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_secs(10) && gaps[1] <= Duration::from_secs(10) + slack,
        "{gaps:?}"
    );
}

#[test]
fn a_connection_that_never_opens_times_out_and_is_abandoned() {
    let (info, content) = torrent(50_000);
    let mut world = World::new(2);
    world.add(0, &info, &content, true);
    world.add(1, &info, &content, false);
    // The tracker goes silent while the newcomer's offer is on its way: the
    // seeder's answer never reaches the newcomer, so the seeder's end of
    // the connection waits for a peer that never comes.
    world.run_for(Duration::from_millis(10), |_| false);
    world.tracker.up = false;
    let start = world.now;
    world.run_for(Duration::from_secs(25), |_| false);
    let failures = connect_failures(&world, 0);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        failures[0].0,
        ConnectError::TimedOut(Duration::from_secs(20))
    );
    let when = |wanted: fn(&Action) -> bool| {
        world.peers[0]
            .actions
            .iter()
            .find(|(_, a)| wanted(a))
            .map(|(at, _)| *at)
    };
    let opened = when(|a| matches!(a, Action::OpenAnswered { .. })).expect("answered");
    let abandoned = when(|a| matches!(a, Action::Abandon { .. })).expect("abandoned");
    assert!(opened > start);
    assert_eq!(abandoned - opened, Duration::from_secs(20));
    assert!(world.peers[0].links.is_empty());
}

#[test]
fn unanswered_offers_are_dropped_when_they_expire() {
    let (info, content) = torrent(50_000);
    let mut world = World::new(1);
    world.add(0, &info, &content, true);
    let start = world.now;
    world.run_for(Duration::from_secs(55), |_| false);
    let drops: Vec<Duration> = world.peers[0]
        .actions
        .iter()
        .filter(|(_, a)| matches!(a, Action::DropOffer { .. }))
        .map(|(at, _)| *at - start)
        .collect();
    assert_eq!(drops.len(), 5, "{drops:?}");
    assert!(
        drops.iter().all(|d| *d == Duration::from_secs(50)),
        "{drops:?}"
    );
}
