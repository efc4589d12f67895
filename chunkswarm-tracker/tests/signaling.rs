//! The WebSocket tracker with real clients over loopback.

mod common;

use std::time::Duration;

use chunkswarm_tracker::{Config, Limits, RateBudget};
use common::{TestTracker, WAIT, announce, answer, id};
use serde_json::json;

fn quiet_limits() -> Limits {
    Limits {
        ip_requests_per_second: 0,
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
async fn two_peers_exchange_an_offer_and_an_answer() {
    let t = TestTracker::start(config(quiet_limits())).await;
    let (ih, alice_id, bob_id, offer_id) = (id(0xa1), id(1), id(2), id(0xf0));
    let mut alice = t.client().await;
    let mut bob = t.client().await;

    bob.send(&announce(&ih, &bob_id, &[])).await;
    let reply = bob.recv().await;
    assert_eq!(reply["action"], "announce");
    assert_eq!(reply["info_hash"], ih);
    assert_eq!(reply["interval"], 120);
    assert_eq!(
        (reply["complete"].as_u64(), reply["incomplete"].as_u64()),
        (Some(0), Some(1))
    );

    alice
        .send(&announce(
            &ih,
            &alice_id,
            &[(offer_id.clone(), "alice-sdp")],
        ))
        .await;
    let reply = alice.recv().await;
    assert_eq!(reply["incomplete"], 2);

    let offer = bob.recv().await;
    assert_eq!(offer["action"], "announce");
    assert_eq!(offer["info_hash"], ih);
    assert_eq!(offer["peer_id"], alice_id);
    assert_eq!(offer["offer_id"], offer_id);
    assert_eq!(offer["offer"], json!({"type": "offer", "sdp": "alice-sdp"}));

    bob.send(&answer(&ih, &bob_id, &alice_id, &offer_id, "bob-sdp"))
        .await;
    let relayed = alice.recv().await;
    assert_eq!(relayed["action"], "announce");
    assert_eq!(relayed["info_hash"], ih);
    assert_eq!(relayed["peer_id"], bob_id);
    assert_eq!(relayed["offer_id"], offer_id);
    assert_eq!(
        relayed["answer"],
        json!({"type": "answer", "sdp": "bob-sdp"})
    );
    // The answerer gets no reply, as with WebTorrent's tracker.
    bob.expect_silence(Duration::from_millis(100)).await;

    // Scrape sees both; a stop leaves one.
    bob.send(&json!({"action": "scrape", "info_hash": [ih.clone()]}))
        .await;
    let scrape = bob.recv().await;
    assert_eq!(scrape["action"], "scrape");
    assert_eq!(scrape["files"][&ih]["incomplete"], 2);
    let mut stop = announce(&ih, &alice_id, &[]);
    stop["event"] = json!("stopped");
    alice.send(&stop).await;
    assert_eq!(alice.recv().await["incomplete"], 1);
    t.stop().await;
}

#[tokio::test]
async fn ids_with_every_byte_value_survive_the_round_trip() {
    let t = TestTracker::start(config(quiet_limits())).await;
    let mut alice = t.client().await;
    let mut bob = t.client().await;
    let ih = common::bin(std::array::from_fn(|i| i as u8)); // control characters
    let alice_id = common::bin(std::array::from_fn(|i| 0xec + i as u8 % 20)); // latin-1 high half
    let bob_id = common::bin(std::array::from_fn(|i| [b'"', b'\\', 0x7f, 0x80][i % 4]));
    let offer_id = common::bin(std::array::from_fn(|i| 0xff - i as u8));
    bob.send(&announce(&ih, &bob_id, &[])).await;
    bob.recv().await;
    alice
        .send(&announce(&ih, &alice_id, &[(offer_id.clone(), "x")]))
        .await;
    alice.recv().await;
    let offer = bob.recv().await;
    assert_eq!(offer["peer_id"], alice_id);
    assert_eq!(offer["offer_id"], offer_id);
    assert_eq!(offer["info_hash"], ih);
    bob.send(&answer(&ih, &bob_id, &alice_id, &offer_id, "y"))
        .await;
    assert_eq!(alice.recv().await["peer_id"], bob_id);
}

#[tokio::test]
async fn another_connection_cannot_use_a_claimed_peer_id() {
    let t = TestTracker::start(config(quiet_limits())).await;
    let (ih, victim_id) = (id(0xb1), id(7));
    let mut victim = t.client().await;
    let mut spoofer = t.client().await;
    victim.send(&announce(&ih, &victim_id, &[])).await;
    victim.recv().await;

    spoofer
        .send(&announce(&ih, &victim_id, &[(id(0xf1), "spoof")]))
        .await;
    let refusal = spoofer.recv().await;
    assert_eq!(
        refusal["failure reason"],
        "peer_id is in use by another connection"
    );
    assert_eq!(refusal["info_hash"], ih);
    // The spoofer cannot answer in the victim's name either.
    spoofer
        .send(&answer(&ih, &victim_id, &id(9), &id(0xf2), "x"))
        .await;
    assert!(spoofer.recv().await["failure reason"].is_string());
    victim.expect_silence(Duration::from_millis(100)).await;

    // Once the owner leaves, the id is free.
    drop(victim);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        spoofer.send(&announce(&ih, &victim_id, &[])).await;
        if spoofer.recv().await.get("failure reason").is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "peer id never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unsolicited_and_expired_answers_are_dropped() {
    let limits = Limits {
        offer_ttl: Duration::from_millis(300),
        ..quiet_limits()
    };
    let t = TestTracker::start(config(limits)).await;
    let (ih, alice_id, bob_id, mallory_id) = (id(0xc1), id(1), id(2), id(3));
    let mut alice = t.client().await;
    let mut bob = t.client().await;
    let mut mallory = t.client().await;
    bob.send(&announce(&ih, &bob_id, &[])).await;
    bob.recv().await;

    // Unsolicited: Mallory answers an offer that was never made to her.
    mallory.send(&announce(&id(0xc2), &mallory_id, &[])).await;
    mallory.recv().await;
    alice
        .send(&announce(&ih, &alice_id, &[(id(0xf1), "a")]))
        .await;
    alice.recv().await;
    let offer = bob.recv().await;
    mallory
        .send(&answer(&ih, &mallory_id, &alice_id, &id(0xf1), "evil"))
        .await;
    assert_eq!(
        mallory.recv().await["failure reason"],
        "no outstanding offer for this answer"
    );
    mallory
        .send(&answer(&ih, &mallory_id, &alice_id, &id(0xee), "evil"))
        .await;
    assert_eq!(
        mallory.recv().await["failure reason"],
        "no outstanding offer for this answer"
    );
    alice.expect_silence(Duration::from_millis(100)).await;

    // Expired: Bob answers after the offer's time to live.
    tokio::time::sleep(Duration::from_millis(400)).await;
    bob.send(&answer(
        &ih,
        &bob_id,
        &alice_id,
        offer["offer_id"].as_str().unwrap(),
        "late",
    ))
    .await;
    assert_eq!(bob.recv().await["failure reason"], "offer expired");
    alice.expect_silence(Duration::from_millis(100)).await;

    // A fresh offer is answered in time and relayed.
    alice
        .send(&announce(&ih, &alice_id, &[(id(0xf3), "b")]))
        .await;
    alice.recv().await;
    let offer = bob.recv().await;
    bob.send(&answer(
        &ih,
        &bob_id,
        &alice_id,
        offer["offer_id"].as_str().unwrap(),
        "ok",
    ))
    .await;
    assert_eq!(alice.recv().await["answer"]["sdp"], "ok");
}

#[tokio::test]
async fn bad_messages_get_errors_or_a_close_and_others_are_unaffected() {
    let limits = Limits {
        max_message_bytes: 4096,
        abuse: RateBudget {
            per_second: 0.0,
            burst: 5,
        },
        ..quiet_limits()
    };
    let t = TestTracker::start(config(limits)).await;
    let ih = id(0xd1);
    let mut good = t.client().await;
    good.send(&announce(&ih, &id(1), &[])).await;
    good.recv().await;

    // Not JSON, truncated JSON, wrong types: each gets a failure reason.
    let mut bad = t.client().await;
    for text in [
        "hello",
        "{\"action\":\"announce\",\"info_hash\":",
        "[1,2]",
        "{\"action\":\"announce\",\"info_hash\":5}",
    ] {
        bad.send_text(text).await;
        let reply = bad.recv().await;
        assert!(reply["failure reason"].is_string(), "{text}: {reply}");
    }
    // A binary frame too.
    futures_util::SinkExt::send(
        &mut bad.ws,
        tokio_tungstenite::tungstenite::Message::binary(vec![1, 2, 3]),
    )
    .await
    .unwrap();
    assert_eq!(
        bad.recv().await["failure reason"],
        "binary messages are not supported"
    );
    // Past the error budget, the connection is closed with 1008.
    bad.send_text("nope").await;
    assert_eq!(bad.closed().await, Some(1008));

    // Oversized: closed with 1009.
    let mut big = t.client().await;
    let huge = announce(&ih, &id(3), &[(id(0xf1), &"x".repeat(10_000))]);
    big.send(&huge).await;
    assert_eq!(big.closed().await, Some(1009));

    // The good client is still served.
    good.send(&json!({"action": "scrape", "info_hash": ih}))
        .await;
    assert_eq!(good.recv().await["files"][&ih]["incomplete"], 1);
    let metrics = t.get("/metrics").await.text();
    assert!(
        metrics.contains("reason=\"message_too_large\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reason=\"too_many_errors\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn offers_per_announce_and_swarms_per_connection_are_bounded() {
    let limits = Limits {
        max_offers_per_announce: 2,
        max_swarms_per_connection: 1,
        ..quiet_limits()
    };
    let t = TestTracker::start(config(limits)).await;
    let ih = id(0xe1);
    let mut others = Vec::new();
    for n in 0..4u8 {
        let mut c = t.client().await;
        c.send(&announce(&ih, &id(10 + n), &[])).await;
        c.recv().await;
        others.push(c);
    }
    let mut offerer = t.client().await;
    let offers: Vec<(String, &str)> = (0..5u8).map(|n| (id(0xf0 + n), "o")).collect();
    offerer.send(&announce(&ih, &id(1), &offers)).await;
    offerer.recv().await;
    let mut delivered = 0;
    for c in &mut others {
        if c.next_text(Duration::from_millis(200)).await.is_some() {
            delivered += 1;
        }
    }
    assert_eq!(delivered, 2);
    offerer.send(&announce(&id(0xe2), &id(1), &[])).await;
    assert_eq!(
        offerer.recv().await["failure reason"],
        "too many swarms on this connection"
    );
}

#[tokio::test]
async fn rate_limits_refuse_a_flood_without_slowing_others() {
    let limits = Limits {
        ip_requests_per_second: 5,
        ip_burst: 10,
        abuse: RateBudget {
            per_second: 0.0,
            burst: 1000,
        },
        ..Limits::default()
    };
    let t = TestTracker::start(config(limits)).await;
    let ih = id(0x51);
    let mut flooder = t.client().await;
    for _ in 0..30 {
        flooder
            .send(&json!({"action": "scrape", "info_hash": ih}))
            .await;
    }
    let mut limited = 0;
    while let Some(text) = flooder.next_text(Duration::from_millis(200)).await {
        if text.contains("rate limited") {
            limited += 1;
        }
    }
    // At most three "rate limited" replies, then silence.
    assert_eq!(limited, 3);
    let metrics = t.get("/metrics").await.text();
    assert!(!metrics.contains("reason=\"rate_limited\"} 0"), "{metrics}");
}

#[tokio::test]
async fn idle_connections_are_closed_and_their_peers_leave() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(300),
        ..quiet_limits()
    };
    let t = TestTracker::start(config(limits)).await;
    let ih = id(0x61);
    let mut idle = t.client().await;
    idle.send(&announce(&ih, &id(1), &[])).await;
    idle.recv().await;
    assert_eq!(idle.closed().await, Some(1000));
    let swarms = t.json("/api/swarms").await;
    assert_eq!(swarms["total"], 0, "{swarms}");
}

#[tokio::test]
async fn shutdown_closes_websockets_with_going_away() {
    let t = TestTracker::start(config(quiet_limits())).await;
    let mut c = t.client().await;
    c.send(&announce(&id(0x71), &id(1), &[])).await;
    c.recv().await;
    let stop = tokio::spawn(t.stop());
    assert_eq!(c.closed().await, Some(1001));
    tokio::time::timeout(WAIT, stop).await.unwrap().unwrap();
}

#[tokio::test]
async fn pings_are_answered_with_their_payload_after_the_replies_before_them() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let t = TestTracker::start(config(quiet_limits())).await;
    let mut c = t.client().await;
    c.send(&announce(&id(0x72), &id(1), &[])).await;
    c.ws.send(Message::Ping(b"first".to_vec().into()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(WAIT, c.ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(reply["action"], "announce");
                seen.push("reply".to_owned());
            }
            Ok(Some(Ok(Message::Pong(payload)))) => {
                seen.push(String::from_utf8(payload.to_vec()).unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["reply", "first"]);
    // An idle connection answers too.
    c.ws.send(Message::Ping(b"again".to_vec().into()))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, c.ws.next()).await {
        Ok(Some(Ok(Message::Pong(payload)))) => assert_eq!(&payload[..], b"again"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn tracker_shutdown_also_stops_serve() {
    let mut t = TestTracker::start(config(quiet_limits())).await;
    let mut c = t.client().await;
    t.tracker.shutdown();
    assert_eq!(c.closed().await, Some(1001));
    let task = t.task.take().unwrap();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(t.addr).await.is_err());
}

#[tokio::test]
async fn piece_reports_show_in_the_api() {
    let t = TestTracker::start(config(quiet_limits())).await;
    let ih_bytes = [0x81u8; 20];
    let ih = common::bin(ih_bytes);
    let hex: String = ih_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut a = t.client().await;
    let mut b = t.client().await;
    let mut first = announce(&ih, &id(1), &[]);
    first["x_cs_bitfield"] = json!("a0"); // pieces 0 and 2 of 4
    first["x_cs_pieces"] = json!(4);
    a.send(&first).await;
    assert!(a.recv().await.get("warning message").is_none());
    b.send(&announce(&ih, &id(2), &[])).await;
    b.recv().await;
    b.send(&json!({"action": "x_cs_have", "info_hash": ih, "peer_id": id(2), "pieces": [2, 3]}))
        .await;
    // x_cs_have has no reply; a scrape after it orders the check.
    b.send(&json!({"action": "scrape", "info_hash": ih})).await;
    b.recv().await;

    let swarms = t.json("/api/swarms").await;
    assert_eq!(swarms["swarms"][0]["info_hash"], hex);
    assert_eq!(swarms["swarms"][0]["peers"], 2);
    let pieces = t.json(&format!("/api/swarms/{hex}/pieces")).await;
    let counts: Vec<u64> = pieces["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 0, 2, 1]);
    assert_eq!(pieces["pieces"][2]["holders"].as_array().unwrap().len(), 2);
    assert_eq!(t.get("/api/swarms/zz/pieces").await.status, 400);
    assert_eq!(
        t.get(&format!("/api/swarms/{}/pieces", "0".repeat(40)))
            .await
            .status,
        404
    );

    // Leaving drops the peer's pieces.
    drop(a);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pieces = t.json(&format!("/api/swarms/{hex}/pieces")).await;
        if pieces["peers"].as_array().unwrap().len() == 1 {
            assert_eq!(pieces["pieces"][0]["count"], 0);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_never_reads_slows_no_one() {
    let limits = Limits {
        outbound_queue: 4,
        abuse: RateBudget {
            per_second: 0.0,
            burst: 10_000,
        },
        ..quiet_limits()
    };
    let t = TestTracker::start(config(limits)).await;
    let ih = id(0x91);
    // The slow client joins, then never reads again.
    let mut slow = t.client().await;
    slow.send(&announce(&ih, &id(1), &[])).await;
    slow.recv().await;
    let mut good = t.client().await;
    good.send(&announce(&ih, &id(2), &[])).await;
    good.recv().await;

    let mut offerer = t.client().await;
    let sdp = "s".repeat(30_000);
    let started = std::time::Instant::now();
    let mut good_offers = 0;
    for n in 0..400u32 {
        let offer_id = common::bin(std::array::from_fn(|i| (n >> (i % 4 * 8)) as u8));
        offerer
            .send(&announce(&ih, &id(3), &[(offer_id, &sdp)]))
            .await;
        assert!(offerer.recv().await.get("failure reason").is_none());
        while good.next_text(Duration::from_millis(1)).await.is_some() {
            good_offers += 1;
        }
    }
    while good.next_text(Duration::from_millis(100)).await.is_some() {
        good_offers += 1;
    }
    assert!(
        good_offers > 100,
        "the good peer got only {good_offers} offers"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    // Once the slow client's queue is full it is passed over: no offer is
    // built for it only to be lost, each goes to a member with room.
    let metrics = t.get("/metrics").await.text();
    assert!(
        metrics.contains("reason=\"slow_peer\"} 0"),
        "an offer was lost to a full queue: {metrics}"
    );
    drop(slow);
}
