//! Cluster mode with a real `redis-server` and three tracker processes:
//! peers on different nodes meet, a `peer_id` is one node's at a time,
//! counts are cluster-wide, a killed node's peers come back through another,
//! and a Redis outage leaves local service running and converges after.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
mod nodes;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, announce, answer, http_over, id};
use nodes::{Node, Redis};
use serde_json::{Value, json};
use tokio::net::TcpStream;

async fn client(addr: SocketAddr) -> Client<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/announce");
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    Client { ws }
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    http_over(tcp, &head).await.text()
}

/// Polls `check` every 100 ms until it holds; panics after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

async fn connected(node: SocketAddr) -> bool {
    get(node, "/healthz").await.contains("cluster: connected")
}

async fn cluster_of(redis: &Redis, n: usize) -> Vec<Node> {
    let nodes: Vec<Node> = (0..n).map(|_| Node::start(&redis.url())).collect();
    for node in &nodes {
        within(Duration::from_secs(10), "node connected", || {
            connected(node.addr)
        })
        .await;
    }
    nodes
}

async fn scrape(addr: SocketAddr, info_hash: &str) -> Value {
    let mut c = client(addr).await;
    c.send(&json!({"action": "scrape", "info_hash": info_hash}))
        .await;
    c.recv().await["files"][info_hash].clone()
}

fn seeder(info_hash: &str, peer_id: &str) -> Value {
    let mut message = announce(info_hash, peer_id, &[]);
    message["left"] = json!(0);
    message
}

#[tokio::test]
async fn peers_on_different_nodes_exchange_offers_and_answers_and_counts_are_shared() {
    let redis = Redis::start();
    let nodes = cluster_of(&redis, 3).await;
    let (ih, alice_id, bob_id, offer_id) = (id(0xa1), id(1), id(2), id(0xf0));

    let mut alice = client(nodes[0].addr).await;
    alice.send(&announce(&ih, &alice_id, &[])).await;
    assert_eq!(alice.recv().await["incomplete"], 1);

    // Bob, on another node, offers: the one member is Alice, there.
    let mut bob = client(nodes[1].addr).await;
    bob.send(&announce(&ih, &bob_id, &[(offer_id.clone(), "bob's sdp")]))
        .await;
    assert_eq!(bob.recv().await["incomplete"], 2);
    let offer = alice.recv().await;
    assert_eq!(offer["offer"]["sdp"], "bob's sdp");
    assert_eq!(offer["peer_id"], bob_id);
    assert_eq!(offer["offer_id"], offer_id);

    alice
        .send(&answer(&ih, &alice_id, &bob_id, &offer_id, "alice's sdp"))
        .await;
    let relayed = bob.recv().await;
    assert_eq!(relayed["answer"]["sdp"], "alice's sdp");
    assert_eq!(relayed["peer_id"], alice_id);
    // Answered once: the same answer again is refused where it was checked.
    alice
        .send(&answer(&ih, &alice_id, &bob_id, &offer_id, "again"))
        .await;
    assert!(alice.recv().await["failure reason"].is_string());

    let mut dave = client(nodes[2].addr).await;
    dave.send(&seeder(&ih, &id(4))).await;
    let reply = dave.recv().await;
    assert_eq!(
        (reply["complete"].clone(), reply["incomplete"].clone()),
        (json!(1), json!(2))
    );
    for node in &nodes {
        let counts = scrape(node.addr, &ih).await;
        assert_eq!(
            (counts["complete"].clone(), counts["incomplete"].clone()),
            (json!(1), json!(2))
        );
    }
    let metrics = get(nodes[1].addr, "/metrics").await;
    assert!(
        metrics.contains("chunkswarm_tracker_cluster_connected 1"),
        "{metrics}"
    );
    // The API's counts of a swarm are the cluster's too.
    let swarms: Value = serde_json::from_str(&get(nodes[0].addr, "/api/swarms").await).unwrap();
    let swarm = &swarms["swarms"][0];
    assert_eq!(
        (swarm["peers"].clone(), swarm["seeders"].clone()),
        (json!(3), json!(1)),
        "{swarms}"
    );
}

#[tokio::test]
async fn a_peer_id_taken_on_one_node_cannot_be_used_on_another() {
    let redis = Redis::start();
    let nodes = cluster_of(&redis, 2).await;
    let (ih, peer_id) = (id(0xb1), id(7));
    let mut owner = client(nodes[0].addr).await;
    owner.send(&announce(&ih, &peer_id, &[])).await;
    owner.recv().await;
    let mut spoofer = client(nodes[1].addr).await;
    spoofer.send(&announce(&ih, &peer_id, &[])).await;
    assert_eq!(
        spoofer.recv().await["failure reason"],
        "peer_id is in use by another connection"
    );
    // Once the owner leaves, the id is free on every node.
    drop(owner);
    within(Duration::from_secs(5), "peer id released", || async {
        let mut c = client(nodes[1].addr).await;
        c.send(&announce(&ih, &peer_id, &[])).await;
        c.recv().await.get("failure reason").is_none()
    })
    .await;
}

#[tokio::test]
async fn the_clients_of_a_killed_node_meet_again_through_another_within_10_s() {
    let redis = Redis::start();
    let mut nodes = cluster_of(&redis, 3).await;
    let (ih, peer_id, lost_id) = (id(0xc1), id(8), id(9));
    let mut on_node_1 = client(nodes[1].addr).await;
    on_node_1.send(&announce(&ih, &peer_id, &[])).await;
    on_node_1.recv().await;
    let mut never_back = client(nodes[1].addr).await;
    never_back.send(&announce(&ih, &lost_id, &[])).await;
    never_back.recv().await;
    assert_eq!(scrape(nodes[2].addr, &ih).await["incomplete"], 2);

    nodes[1].kill();
    // The client reconnects to node 0 and announces with its peer id until
    // the dead node's claim on it lapses.
    let reconnected = std::sync::Arc::new(tokio::sync::Mutex::new(None));
    let took = within(Duration::from_secs(10), "peer id reclaimed", || {
        let reconnected = reconnected.clone();
        let (addr, ih, peer_id) = (nodes[0].addr, ih.clone(), peer_id.clone());
        async move {
            let mut c = client(addr).await;
            c.send(&announce(&ih, &peer_id, &[])).await;
            let ok = c.recv().await.get("failure reason").is_none();
            if ok {
                *reconnected.lock().await = Some(c);
            }
            ok
        }
    })
    .await;
    let mut back = reconnected.lock().await.take().unwrap();
    // A peer on node 2 meets it.
    let mut other = client(nodes[2].addr).await;
    other
        .send(&announce(&ih, &id(10), &[(id(0xf1), "hello")]))
        .await;
    other.recv().await;
    assert_eq!(back.recv().await["offer"]["sdp"], "hello");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The peer that never came back no longer counts.
    within(
        Duration::from_secs(10),
        "dead node's peer forgotten",
        || async { scrape(nodes[2].addr, &ih).await["incomplete"] == 2 },
    )
    .await;
}

#[tokio::test]
async fn through_a_redis_outage_nodes_serve_locally_then_converge() {
    let mut redis = Redis::start();
    let nodes = cluster_of(&redis, 3).await;
    let ih = id(0xd1);
    let mut a = client(nodes[0].addr).await;
    a.send(&announce(&ih, &id(1), &[])).await;
    a.recv().await;

    redis.stop();
    let outage = Instant::now();
    within(Duration::from_secs(5), "outage noticed", || async {
        get(nodes[0].addr, "/healthz")
            .await
            .contains("redis unreachable")
    })
    .await;
    let metrics = get(nodes[0].addr, "/metrics").await;
    assert!(
        metrics.contains("chunkswarm_tracker_cluster_connected 0"),
        "{metrics}"
    );
    // Local service goes on: peers of one node meet.
    let mut b = client(nodes[0].addr).await;
    b.send(&announce(&ih, &id(2), &[(id(0xf2), "local")])).await;
    assert_eq!(b.recv().await["incomplete"], 2);
    assert_eq!(a.recv().await["offer"]["sdp"], "local");
    let mut c = client(nodes[1].addr).await;
    c.send(&announce(&ih, &id(3), &[])).await;
    assert_eq!(c.recv().await["incomplete"], 1);

    tokio::time::sleep(Duration::from_secs(5).saturating_sub(outage.elapsed())).await;
    redis.restart();
    for node in &nodes {
        within(Duration::from_secs(10), "reconnected", || {
            connected(node.addr)
        })
        .await;
    }
    // Every node sees the three peers again, though Redis restarted empty.
    for node in &nodes {
        within(Duration::from_secs(5), "converged", || async {
            scrape(node.addr, &ih).await["incomplete"] == 3
        })
        .await;
    }
}

fn with_pieces(info_hash: &str, peer_id: &str, bits: &str, offers: &[(String, &str)]) -> Value {
    let mut message = announce(info_hash, peer_id, offers);
    message["x_cs_bitfield"] = json!(bits);
    message["x_cs_pieces"] = json!(64);
    message["x_cs_position"] = json!(0);
    message
}

#[tokio::test]
async fn the_piece_map_chooses_among_members_of_every_node() {
    let redis = Redis::start();
    let nodes = cluster_of(&redis, 2).await;
    let ih = id(0xe1);
    // On node 1: one member holding the first 8 of 64 pieces, ten holding none.
    let mut holder = client(nodes[1].addr).await;
    holder
        .send(&with_pieces(&ih, &id(1), "ff00000000000000", &[]))
        .await;
    holder.recv().await;
    let mut others = Vec::new();
    for n in 0..10u8 {
        let mut c = client(nodes[1].addr).await;
        c.send(&with_pieces(&ih, &id(0x10 + n), "0000000000000000", &[]))
            .await;
        c.recv().await;
        others.push(c);
    }
    // Askers on node 0 lacking everything, playing from piece 0: their one
    // offer goes to the holder each time (at random: 1 in 11).
    let mut askers = Vec::new();
    for n in 0..3u8 {
        let mut asker = client(nodes[0].addr).await;
        let offer = [(id(0xf0 + n), "from an asker")];
        asker
            .send(&with_pieces(&ih, &id(0x30 + n), "0000000000000000", &offer))
            .await;
        asker.recv().await;
        let got = holder.recv().await;
        assert_eq!(got["peer_id"], id(0x30 + n), "{got}");
        askers.push(asker);
    }
    for c in &mut others {
        c.expect_silence(Duration::from_millis(100)).await;
    }
    // Either node's piece view shows every node's members.
    for node in &nodes {
        let path = format!("/api/swarms/{}/pieces", "e1".repeat(20));
        let report: Value = serde_json::from_str(&get(node.addr, &path).await).unwrap();
        assert_eq!(report["peers"].as_array().unwrap().len(), 14, "{report}");
        assert_eq!(report["pieces"][0]["count"], 1, "{report}");
        assert_eq!(report["pieces"][8]["count"], 0, "{report}");
    }
    // Pieces gained between announces reach the other node at its next heartbeat.
    others[0]
        .send(
            &json!({"action": "x_cs_have", "info_hash": ih, "peer_id": id(0x10), "pieces": [8, 9]}),
        )
        .await;
    let path = format!("/api/swarms/{}/pieces", "e1".repeat(20));
    within(Duration::from_secs(5), "x_cs_have shared", || async {
        let report: Value = serde_json::from_str(&get(nodes[0].addr, &path).await).unwrap();
        report["pieces"][9]["count"] == 1
    })
    .await;
}

async fn json_at(addr: SocketAddr, path: &str) -> Value {
    serde_json::from_str(&get(addr, path).await).unwrap()
}

/// `(peers, seeders, leechers)` of `info_hash` in a `/api/swarms` answer.
fn listed(swarms: &Value, hex: &str) -> Option<(Value, Value, Value)> {
    swarms["swarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["info_hash"] == hex)
        .map(|s| {
            (
                s["peers"].clone(),
                s["seeders"].clone(),
                s["leechers"].clone(),
            )
        })
}

#[tokio::test]
async fn every_node_lists_every_swarm_of_the_cluster_and_its_catalog_counts_them() {
    let media = tempfile::tempdir().unwrap();
    std::fs::write(media.path().join("clip.webm"), vec![7u8; 100_000]).unwrap();
    let media_dir = media.path().to_str().unwrap();
    let mut redis = Redis::start();
    let nodes: Vec<Node> = (0..2)
        .map(|_| Node::start_with(&redis.url(), &["--media", media_dir]))
        .collect();
    for node in &nodes {
        within(Duration::from_secs(10), "node connected", || {
            connected(node.addr)
        })
        .await;
    }
    // A swarm whose only members are on node 1: a seeder and a leecher.
    let (remote_ih, local_ih) = (id(0x71), id(0x72));
    let (remote_hex, local_hex) = ("71".repeat(20), "72".repeat(20));
    let mut seed = client(nodes[1].addr).await;
    seed.send(&seeder(&remote_ih, &id(1))).await;
    seed.recv().await;
    let mut leech = client(nodes[1].addr).await;
    leech.send(&announce(&remote_ih, &id(2), &[])).await;
    leech.recv().await;
    // And one member on node 0, of another swarm.
    let mut local = client(nodes[0].addr).await;
    local.send(&announce(&local_ih, &id(3), &[])).await;
    local.recv().await;

    for node in &nodes {
        let swarms = json_at(node.addr, "/api/swarms").await;
        assert_eq!(swarms["view"], "cluster", "{swarms}");
        assert_eq!(swarms["total"], 2, "{swarms}");
        assert_eq!(
            listed(&swarms, &remote_hex),
            Some((json!(2), json!(1), json!(1))),
            "{swarms}"
        );
        assert_eq!(
            listed(&swarms, &local_hex),
            Some((json!(1), json!(0), json!(1))),
            "{swarms}"
        );
        // Largest first, across nodes.
        assert_eq!(swarms["swarms"][0]["info_hash"], remote_hex.as_str());
        let one = json_at(node.addr, "/api/swarms?limit=1").await;
        assert_eq!(one["swarms"].as_array().unwrap().len(), 1, "{one}");
        assert_eq!(one["total"], 2, "{one}");
    }

    // The catalog's counts: the library's file, its swarm joined on node 1
    // only, as node 0's search shows it.
    get(nodes[0].addr, "/torrents/clip.webm.torrent").await;
    let found = json_at(nodes[0].addr, "/api/search?q=clip").await;
    let clip_hex = found["results"][0]["info_hash"]
        .as_str()
        .unwrap_or_else(|| panic!("no info hash: {found}"));
    let mut bytes = [0u8; 20];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&clip_hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let clip_ih = common::bin(bytes);
    let mut viewer = client(nodes[1].addr).await;
    viewer.send(&seeder(&clip_ih, &id(4))).await;
    viewer.recv().await;
    let found = json_at(nodes[0].addr, "/api/search?q=clip").await;
    assert_eq!(found["view"], "cluster", "{found}");
    assert_eq!(
        (
            found["results"][0]["peers"].clone(),
            found["results"][0]["seeders"].clone()
        ),
        (json!(1), json!(1)),
        "{found}"
    );

    // Without Redis, node 0 lists its own swarms and says so.
    redis.stop();
    within(Duration::from_secs(5), "outage noticed", || async {
        !connected(nodes[0].addr).await
    })
    .await;
    let swarms = json_at(nodes[0].addr, "/api/swarms").await;
    assert_eq!(
        (
            swarms["view"].clone(),
            swarms["cluster"].clone(),
            swarms["total"].clone()
        ),
        (json!("local"), json!("redis unreachable"), json!(1)),
        "{swarms}"
    );
    assert_eq!(
        listed(&swarms, &local_hex),
        Some((json!(1), json!(0), json!(1)))
    );
    let found = json_at(nodes[0].addr, "/api/search?q=clip").await;
    assert_eq!(found["view"], "local", "{found}");
    assert_eq!(found["results"][0]["peers"], 0, "{found}");
}
