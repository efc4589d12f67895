//! Running out of sources: an origin that keeps answering that the content
//! is not there is given up, and a torrent with no peer and no usable web
//! seed says so, once, and carries on when a peer comes.

use super::*;
use crate::driver::HttpError;

fn soon() -> SwarmConfig {
    SwarmConfig {
        no_source_timeout: Duration::from_secs(5),
        ..SwarmConfig::default()
    }
}

fn count(net: &Net, node: usize, what: impl Fn(&Event) -> bool) -> usize {
    net.nodes[node].events.iter().filter(|e| what(e)).count()
}

/// Runs until `node` has heard an event that `what` matches; returns when.
fn run_until_heard(net: &mut Net, node: usize, what: impl Fn(&Event) -> bool) -> Instant {
    net.run_until(Duration::from_secs(300), |n| {
        n.nodes[node].events.iter().any(&what)
    });
    assert!(count(net, node, &what) > 0, "never heard");
    net.now
}

#[test]
fn an_origin_answering_not_found_is_given_up_and_no_source_is_left() {
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    net.origin_up = false;
    net.origin_down_status = 404;
    let leecher = net.add(&info, false, false, soon());
    let gone_at = run_until_heard(&mut net, leecher, |e| matches!(e, Event::OriginGone { .. }));
    let fetches = net.http_fetches;
    assert_eq!(fetches, u64::from(HttpConfig::default().gone_after));
    let left_at = run_until_heard(&mut net, leecher, |e| {
        matches!(e, Event::NoSourceLeft { .. })
    });
    let waited = left_at.duration_since(gone_at);
    assert!(
        waited >= Duration::from_secs(5) && waited <= Duration::from_secs(6),
        "reported {waited:?} after the origin was gone"
    );
    net.run_until(Duration::from_secs(120), |_| false);
    assert_eq!(net.http_fetches, fetches, "a gone origin is asked no more");
    let events = &net.nodes[leecher].events;
    let gone: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::OriginGone { .. } | Event::NoSourceLeft { .. }))
        .collect();
    assert_eq!(
        gone,
        [
            &Event::OriginGone {
                error: HttpError::Status(404)
            },
            &Event::NoSourceLeft {
                origin: Some(HttpError::Status(404))
            }
        ],
        "each said once"
    );
}

#[test]
fn an_origin_failing_for_a_while_is_not_given_up() {
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    net.origin_up = false; // 503: it may come back
    let leecher = net.add(&info, false, false, soon());
    net.run_until(Duration::from_secs(120), |_| false);
    assert!(net.http_fetches > u64::from(HttpConfig::default().gone_after));
    let silent = |e: &Event| matches!(e, Event::OriginGone { .. } | Event::NoSourceLeft { .. });
    assert_eq!(count(&net, leecher, silent), 0);
    net.origin_up = true;
    net.run_until(Duration::from_secs(120), |n| {
        n.nodes[leecher].swarm.is_complete()
    });
    assert_eq!(net.assembled(leecher), net.content);
}

#[test]
fn without_peers_or_web_seed_no_source_is_left_until_a_peer_comes() {
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    let no_web_seed = SwarmConfig {
        http: HttpConfig {
            enabled: false,
            ..HttpConfig::default()
        },
        ..soon()
    };
    let leecher = net.add(&info, false, false, no_web_seed);
    let start = net.now;
    let left_at = run_until_heard(&mut net, leecher, |e| {
        matches!(e, Event::NoSourceLeft { origin: None })
    });
    assert!(left_at.duration_since(start) >= Duration::from_secs(5));
    let seeder = net.add(&info, true, false, SwarmConfig::default());
    net.connect(seeder, leecher);
    net.run_until(Duration::from_secs(60), |n| {
        n.nodes[leecher].swarm.is_complete()
    });
    assert_eq!(net.assembled(leecher), net.content);
    net.run_until(Duration::from_secs(60), |_| false);
    let left = |e: &Event| matches!(e, Event::NoSourceLeft { .. });
    assert_eq!(
        count(&net, leecher, left),
        1,
        "complete: nothing more to say"
    );
}

#[test]
fn only_statuses_no_retry_changes_are_permanent() {
    for status in [400, 401, 403, 404, 410, 416] {
        assert!(HttpError::Status(status).is_permanent(), "{status}");
    }
    for status in [408, 429, 500, 502, 503] {
        assert!(!HttpError::Status(status).is_permanent(), "{status}");
    }
    assert!(HttpError::NoWebSeed.is_permanent());
    assert!(!HttpError::TimedOut.is_permanent());
    assert!(!HttpError::Transport("refused".into()).is_permanent());
    assert!(
        !HttpError::Length {
            expected: 2,
            got: 1
        }
        .is_permanent()
    );
}
