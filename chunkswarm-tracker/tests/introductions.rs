//! Introductions by the piece map, over real WebSocket connections: a
//! viewer's offers reach the peers holding its next pieces, and WebTorrent
//! clients, which report no pieces, still receive offers and still connect.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chunkswarm_tracker::{Config, Limits};
use common::{Client, TestTracker, WAIT, announce, answer, bin, id};
use serde_json::{Value, json};
use tokio::net::TcpStream;

fn config() -> Config {
    Config {
        limits: Limits {
            ip_requests_per_second: 0,
            ..Limits::default()
        },
        ..Config::default()
    }
}

/// An announce of a chunkswarm peer: 16 pieces, its bitfield and playhead.
fn viewer_announce(
    ih: &str,
    peer: &str,
    bits: &str,
    position: u32,
    offers: &[(String, &str)],
) -> Value {
    let mut message = announce(ih, peer, offers);
    message["x_cs_bitfield"] = json!(bits);
    message["x_cs_pieces"] = json!(16);
    message["x_cs_position"] = json!(position);
    message
}

async fn join(t: &TestTracker, message: &Value) -> Client<TcpStream> {
    let mut client = t.client().await;
    client.send(message).await;
    let reply = client.recv().await;
    assert!(reply.get("failure reason").is_none(), "{reply}");
    assert!(reply.get("warning message").is_none(), "{reply}");
    client
}

/// The offers a client received within `wait`, by offering peer id.
async fn offers_from(client: &mut Client<TcpStream>, from: &str, wait: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(text) = client.next_text(wait).await {
        let message: Value = serde_json::from_str(&text).unwrap();
        if message.get("offer").is_some() && message["peer_id"] == from {
            out.push(message);
        }
    }
    out
}

#[tokio::test]
async fn a_viewers_offers_reach_the_holders_of_its_next_pieces() {
    let t = TestTracker::start(config()).await;
    let ih = id(0xc1);
    // Ten peers hold only pieces 0 and 1 and play at 0; three hold 8..12.
    let mut behind = Vec::new();
    for n in 0..10 {
        behind.push(join(&t, &viewer_announce(&ih, &id(10 + n), "c000", 0, &[])).await);
    }
    let mut holders = Vec::new();
    for n in 0..3 {
        holders.push(join(&t, &viewer_announce(&ih, &id(30 + n), "00f0", 8, &[])).await);
    }
    // The viewer holds 0..8 and plays at piece 8: with four offers, three go
    // to the piece map's choice and one to a random member.
    let viewer_id = id(1);
    let offers: Vec<(String, &str)> = (0..4).map(|o| (id(0xe0 + o), "viewer-sdp")).collect();
    let _viewer = join(&t, &viewer_announce(&ih, &viewer_id, "ff00", 8, &offers)).await;
    for holder in &mut holders {
        let got = offers_from(holder, &viewer_id, Duration::from_millis(300)).await;
        assert_eq!(got.len(), 1, "a holder of the next pieces got no offer");
    }
    let mut to_others = 0;
    for peer in &mut behind {
        to_others += offers_from(peer, &viewer_id, Duration::from_millis(50))
            .await
            .len();
    }
    assert_eq!(to_others, 1, "the random share");
}

#[tokio::test]
async fn webtorrent_clients_still_receive_offers_and_connect() {
    let t = TestTracker::start(config()).await;
    let ih = id(0xc2);
    let mut others = Vec::new();
    for n in 0..3 {
        others.push(join(&t, &viewer_announce(&ih, &id(30 + n), "ffff", 0, &[])).await);
    }
    for n in 0..3 {
        others.push(join(&t, &viewer_announce(&ih, &id(40 + n), "00f0", 8, &[])).await);
    }
    // A WebTorrent client: no bitfield, no position.
    let webtorrent_id = id(2);
    let mut webtorrent = join(&t, &announce(&ih, &webtorrent_id, &[])).await;

    // The viewer re-announces with fresh offers until the random share
    // reaches the WebTorrent client: three seeders take the ranked slots, and
    // the random one goes to one of four members.
    let viewer_id = id(1);
    let mut viewer = t.client().await;
    let mut offer = None;
    for round in 0..60u8 {
        let offers: Vec<(String, &str)> = (0..4u8)
            .map(|o| {
                (
                    bin(std::array::from_fn(|i| if i == 0 { round } else { o })),
                    "viewer-sdp",
                )
            })
            .collect();
        viewer
            .send(&viewer_announce(&ih, &viewer_id, "0000", 0, &offers))
            .await;
        assert!(viewer.recv().await.get("failure reason").is_none());
        if let Some(first) = offers_from(&mut webtorrent, &viewer_id, Duration::from_millis(20))
            .await
            .pop()
        {
            offer = Some(first);
            break;
        }
    }
    let offer = offer.expect("the WebTorrent client never received an offer");
    let offer_id = offer["offer_id"].as_str().unwrap();
    webtorrent
        .send(&answer(&ih, &webtorrent_id, &viewer_id, offer_id, "wt-sdp"))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let message = viewer.recv().await;
        if message.get("answer").is_some() {
            assert_eq!(message["peer_id"], webtorrent_id);
            assert_eq!(message["offer_id"], offer_id);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no answer relayed");
    }

    // The WebTorrent client's own offers go to random members: seven offers,
    // seven other members.
    others.push(viewer);
    let offers: Vec<(String, &str)> = (0..7).map(|o| (id(0xd0 + o), "wt-sdp")).collect();
    webtorrent
        .send(&announce(&ih, &webtorrent_id, &offers))
        .await;
    assert!(webtorrent.recv().await.get("failure reason").is_none());
    for other in &mut others {
        let got = offers_from(other, &webtorrent_id, Duration::from_millis(100)).await;
        assert_eq!(got.len(), 1);
    }
}
