//! Refusals sorted by cause: what a churning swarm makes a good client send
//! is answered and never closes its connection; abuse is a rate; a client
//! with a thousand torrents fits on one connection; behind a trusted proxy
//! the limits apply to the forwarded client address.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chunkswarm_tracker::{Config, IpCidr, Limits, RateBudget};
use common::{TestTracker, announce, answer, id};
use serde_json::json;

/// No address rate limit, and an abuse budget of two with no refill, so a
/// refusal wrongly counted as abuse closes the connection at the third.
fn strict_abuse() -> Limits {
    Limits {
        ip_requests_per_second: 0,
        abuse: RateBudget {
            per_second: 0.0,
            burst: 2,
        },
        ..Limits::default()
    }
}

fn config(limits: Limits) -> Config {
    Config {
        limits,
        ..Config::default()
    }
}

#[tokio::test]
async fn benign_refusals_get_their_reply_and_never_close_the_connection() {
    let limits = Limits {
        offer_ttl: Duration::from_millis(200),
        ..strict_abuse()
    };
    let t = TestTracker::start(config(limits)).await;
    let (ih, alice_id, bob_id) = (id(0xa1), id(1), id(2));
    let mut bob = t.client().await;
    bob.send(&announce(&ih, &bob_id, &[])).await;
    bob.recv().await;

    // Alice offers, then leaves before Bob answers: the answer is to a peer gone.
    let mut alice = t.client().await;
    alice
        .send(&announce(&ih, &alice_id, &[(id(0xf1), "a")]))
        .await;
    alice.recv().await;
    let offer = bob.recv().await;
    drop(alice);
    let offer_id = offer["offer_id"].as_str().unwrap().to_owned();
    let gone = answer(&ih, &bob_id, &alice_id, &offer_id, "late");
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        bob.send(&gone).await;
        let reason = bob.recv().await["failure reason"].clone();
        if reason == "no peer with that `to_peer_id`" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{reason}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Carol's offer expires before Bob answers; then he answers it again,
    // and answers offers that were never made (or were forgotten).
    let carol_id = id(3);
    let mut carol = t.client().await;
    carol
        .send(&announce(&ih, &carol_id, &[(id(0xf2), "c")]))
        .await;
    carol.recv().await;
    let offer = bob.recv().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offer_id = offer["offer_id"].as_str().unwrap().to_owned();
    bob.send(&answer(&ih, &bob_id, &carol_id, &offer_id, "late"))
        .await;
    assert_eq!(bob.recv().await["failure reason"], "offer expired");
    for n in 0..20u8 {
        bob.send(&answer(&ih, &bob_id, &carol_id, &id(0x10 + n), "stale"))
            .await;
        assert_eq!(
            bob.recv().await["failure reason"],
            "no outstanding offer for this answer"
        );
        bob.send(&answer(&ih, &bob_id, &id(0x77), &id(0x10 + n), "stale"))
            .await;
        assert_eq!(
            bob.recv().await["failure reason"],
            "no peer with that `to_peer_id`"
        );
        // Pieces reported for a swarm it is not (or no longer) in.
        bob.send(&json!({"action": "x_cs_have", "info_hash": id(0xa2), "peer_id": bob_id, "pieces": [1]}))
            .await;
        assert_eq!(
            bob.recv().await["failure reason"],
            "peer is not in this swarm"
        );
    }

    // Still served.
    bob.send(&json!({"action": "scrape", "info_hash": ih}))
        .await;
    assert_eq!(bob.recv().await["files"][&ih]["incomplete"], 2);
    let metrics = t.get("/metrics").await.text();
    assert!(
        metrics.contains("reason=\"too_many_errors\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("reason=\"not_in_swarm\"} 20"), "{metrics}");
}

#[tokio::test]
async fn abuse_is_a_rate_not_a_lifetime_count() {
    let limits = Limits {
        abuse: RateBudget {
            per_second: 10.0,
            burst: 3,
        },
        ..strict_abuse()
    };
    let t = TestTracker::start(config(limits)).await;
    let mut client = t.client().await;
    // Three bad messages at a time, a second apart: twelve in all, four
    // times the burst, and the connection stays open.
    for _ in 0..4 {
        for _ in 0..3 {
            client.send_text("not json").await;
            assert!(client.recv().await["failure reason"].is_string());
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // A spoofed peer id is abuse too; a flood of bad messages closes with 1008.
    let mut owner = t.client().await;
    owner.send(&announce(&id(0xb1), &id(9), &[])).await;
    owner.recv().await;
    for _ in 0..3 {
        client.send(&announce(&id(0xb1), &id(9), &[])).await;
        assert_eq!(
            client.recv().await["failure reason"],
            "peer_id is in use by another connection"
        );
    }
    client.send(&announce(&id(0xb1), &id(9), &[])).await;
    assert_eq!(client.closed().await, Some(1008));
    let metrics = t.get("/metrics").await.text();
    assert!(
        metrics.contains("reason=\"too_many_errors\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_connection_announces_a_thousand_torrents_with_the_defaults() {
    let limits = Limits {
        ip_requests_per_second: 0,
        ..Limits::default()
    };
    let t = TestTracker::start(config(limits)).await;
    let mut client = t.client().await;
    for n in 0..1000u32 {
        let ih = common::bin(std::array::from_fn(|i| (n >> (i % 4 * 8)) as u8));
        client.send(&announce(&ih, &id(1), &[])).await;
        let reply = client.recv().await;
        assert!(
            reply.get("failure reason").is_none(),
            "torrent {n}: {reply}"
        );
    }
    assert!(
        t.get("/metrics")
            .await
            .text()
            .contains("chunkswarm_tracker_swarms 1000\n")
    );
}

fn per_address_limit(trusted: &[&str]) -> Config {
    Config {
        trusted_proxies: trusted
            .iter()
            .map(|t| t.parse::<IpCidr>().unwrap())
            .collect(),
        limits: Limits {
            max_connections_per_ip: 1,
            ..Limits::default()
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limits() {
    let t = TestTracker::start(per_address_limit(&["127.0.0.0/8"])).await;
    let forwarded = |client: &'static str| [("x-forwarded-for", client)];
    let _a = t.client_with(&forwarded("198.51.100.1")).await.unwrap();
    let _b = t.client_with(&forwarded("198.51.100.2")).await.unwrap();
    // The same client again is over its one connection.
    let again = t.client_with(&forwarded("198.51.100.1")).await;
    assert!(
        again.is_err(),
        "a second connection of one client was let in"
    );
    // A client cannot escape by prepending its own entry: the proxy's is the rightmost.
    let forged = t
        .client_with(&[("x-forwarded-for", "203.0.113.9, 198.51.100.1")])
        .await;
    assert!(
        forged.is_err(),
        "a forged X-Forwarded-For entry was believed"
    );
}

#[tokio::test]
async fn forwarded_addresses_from_untrusted_peers_are_ignored() {
    let t = TestTracker::start(per_address_limit(&["10.0.0.0/8"])).await;
    let _a = t
        .client_with(&[("x-forwarded-for", "198.51.100.1")])
        .await
        .unwrap();
    let b = t.client_with(&[("x-forwarded-for", "198.51.100.2")]).await;
    assert!(b.is_err(), "an untrusted peer chose its own address");
}
