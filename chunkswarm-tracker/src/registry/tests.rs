//! Registry behaviour without sockets: queues stand in for connections.

use std::time::{Duration, Instant};

use crate::signaling::outbox::{Inbox, outbox};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::*;
use crate::signaling::ids::Id20;
use crate::signaling::message::{Request, parse};
use chunkswarm_core::tracker_protocol::Offer;

fn bin(byte: u8) -> String {
    char::from(byte).to_string().repeat(20)
}

fn limits() -> Limits {
    Limits {
        max_swarms_per_connection: 2,
        offer_ttl: Duration::from_secs(5),
        peer_timeout: Duration::from_secs(100),
        ..Limits::default()
    }
}

struct Harness {
    registry: Registry,
    queues: Vec<Inbox>,
}

impl Harness {
    fn new(conns: usize) -> Self {
        let mut registry = Registry::new(limits());
        let queues = (0..conns)
            .map(|i| {
                let (tx, rx) = outbox(16);
                registry.connect(i as ConnId, tx);
                rx
            })
            .collect();
        Self { registry, queues }
    }

    fn send(
        &mut self,
        conn: ConnId,
        message: Value,
        now: Instant,
    ) -> Result<Option<Announced>, RegistryError> {
        let text = message.to_string();
        match parse(&text).unwrap() {
            Request::Announce(a) => self.registry.announce(conn, &a, None, &[], now).map(Some),
            Request::Answer(a) => self.registry.answer(conn, &a, now).map(|_| None),
            Request::Have(h) => self.registry.have(conn, &h, now).map(|()| None),
            Request::Scrape(_) => unreachable!(),
        }
    }

    fn received(&mut self, conn: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(text) = self.queues[conn].try_recv() {
            out.push(serde_json::from_str(&text).unwrap());
        }
        out
    }
}

fn announce(ih: u8, peer: u8, offers: &[u8]) -> Value {
    let offers: Vec<Value> = offers
        .iter()
        .map(
            |&o| json!({"offer_id": bin(o), "offer": {"type": "offer", "sdp": format!("sdp-{o}")}}),
        )
        .collect();
    json!({"action": "announce", "info_hash": bin(ih), "peer_id": bin(peer), "event": "started", "offers": offers})
}

fn answer(ih: u8, peer: u8, to: u8, offer: u8) -> Value {
    json!({"action": "announce", "info_hash": bin(ih), "peer_id": bin(peer), "to_peer_id": bin(to),
           "offer_id": bin(offer), "answer": {"type": "answer", "sdp": "ans"}})
}

#[test]
fn an_idle_connection_keeps_room_only_for_what_it_holds() {
    let now = Instant::now();
    let mut h = Harness::new(4);
    for peer in 1..3 {
        h.send(u64::from(peer), announce(9, peer, &[]), now)
            .unwrap();
    }
    let done = h.send(0, announce(9, 7, &[50, 51]), now).unwrap().unwrap();
    assert_eq!(done.forwarded, 2);
    h.send(0, announce(8, 7, &[]), now).unwrap();
    let state = &h.registry.conns[&0];
    assert_eq!(state.peer_ids.capacity(), 1);
    assert_eq!(state.memberships.capacity(), 2);
    assert_eq!(state.pending.capacity(), 2);
}

#[test]
fn offer_and_answer_are_relayed() {
    let now = Instant::now();
    let mut h = Harness::new(2);
    h.send(1, announce(9, 2, &[]), now).unwrap();
    let done = h.send(0, announce(9, 1, &[50, 51]), now).unwrap().unwrap();
    // One other peer: one of the two offers goes out.
    assert_eq!(done.forwarded, 1);
    assert_eq!(done.counts.incomplete, 2);
    let got = h.received(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["peer_id"], bin(1));
    assert_eq!(got[0]["offer"]["sdp"], "sdp-50");
    h.send(1, answer(9, 2, 1, 50), now).unwrap();
    let got = h.received(0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["answer"]["sdp"], "ans");
    assert_eq!(got[0]["peer_id"], bin(2));
    assert_eq!(got[0]["offer_id"], bin(50));
    // Answered once: a second answer is unsolicited.
    assert_eq!(
        h.send(1, answer(9, 2, 1, 50), now),
        Err(RegistryError::UnsolicitedAnswer)
    );
}

#[test]
fn answers_must_match_an_outstanding_offer_to_this_peer() {
    let now = Instant::now();
    let mut h = Harness::new(3);
    h.send(1, announce(9, 2, &[]), now).unwrap();
    h.send(0, announce(9, 1, &[50]), now).unwrap();
    // Never offered.
    assert_eq!(
        h.send(1, answer(9, 2, 1, 77), now),
        Err(RegistryError::UnsolicitedAnswer)
    );
    // Offered to peer 2, answered by a third connection.
    assert_eq!(
        h.send(2, answer(9, 3, 1, 50), now),
        Err(RegistryError::UnsolicitedAnswer)
    );
    // Wrong swarm.
    assert_eq!(
        h.send(1, answer(8, 2, 1, 50), now),
        Err(RegistryError::UnsolicitedAnswer)
    );
    // Unknown offerer.
    assert_eq!(
        h.send(1, answer(9, 2, 99, 50), now),
        Err(RegistryError::UnknownPeer)
    );
    // Too late.
    let later = now + Duration::from_secs(6);
    assert_eq!(
        h.send(1, answer(9, 2, 1, 50), later),
        Err(RegistryError::ExpiredAnswer)
    );
    assert!(h.received(0).is_empty());
}

#[test]
fn peer_ids_belong_to_their_first_connection() {
    let now = Instant::now();
    let mut h = Harness::new(2);
    h.send(0, announce(9, 1, &[]), now).unwrap();
    assert_eq!(
        h.send(1, announce(9, 1, &[]), now),
        Err(RegistryError::PeerIdTaken)
    );
    assert_eq!(
        h.send(1, announce(8, 1, &[]), now),
        Err(RegistryError::PeerIdTaken)
    );
    h.registry.disconnect(0);
    assert_eq!(h.registry.totals(), (0, 0));
    h.send(1, announce(9, 1, &[]), now).unwrap();
    assert_eq!(h.registry.totals(), (1, 1));
}

#[test]
fn stopped_leaves_and_swarms_per_connection_are_bounded() {
    let now = Instant::now();
    let mut h = Harness::new(1);
    h.send(0, announce(1, 1, &[]), now).unwrap();
    h.send(0, announce(2, 1, &[]), now).unwrap();
    assert_eq!(
        h.send(0, announce(3, 1, &[]), now),
        Err(RegistryError::TooManySwarms)
    );
    let stop =
        json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1), "event": "stopped"});
    h.send(0, stop, now).unwrap();
    assert_eq!(h.registry.totals(), (1, 1));
    h.send(0, announce(3, 1, &[]), now).unwrap();
    assert_eq!(h.registry.totals(), (2, 2));
}

#[test]
fn completion_and_sweeping() {
    let now = Instant::now();
    let mut h = Harness::new(2);
    h.send(0, announce(1, 1, &[]), now).unwrap();
    let seed = json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "left": 0});
    let done = h.send(1, seed, now).unwrap().unwrap();
    assert_eq!((done.counts.complete, done.counts.incomplete), (1, 1));
    let completed =
        json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1), "event": "completed"});
    let done = h.send(0, completed, now).unwrap().unwrap();
    assert_eq!(
        done.counts,
        SwarmCounts {
            complete: 2,
            incomplete: 0,
            downloaded: 1
        }
    );
    // Peer 2 keeps announcing, peer 1 goes silent.
    let later = now + Duration::from_secs(60);
    h.send(
        1,
        json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2)}),
        later,
    )
    .unwrap();
    assert_eq!(h.registry.sweep(now + Duration::from_secs(120)).len(), 1);
    assert_eq!(h.registry.totals(), (1, 1));
    // Its membership is gone too, so it may join again.
    h.send(0, announce(1, 1, &[]), now + Duration::from_secs(121))
        .unwrap();
    assert_eq!(h.registry.totals(), (1, 2));
}

#[test]
fn seeders_do_not_get_offers_from_seeders() {
    let now = Instant::now();
    let mut h = Harness::new(2);
    h.send(
        1,
        json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "left": 0}),
        now,
    )
    .unwrap();
    let mut offer = announce(1, 1, &[50]);
    offer["left"] = json!(0);
    let done = h.send(0, offer, now).unwrap().unwrap();
    assert_eq!(done.forwarded, 0);
}

#[test]
fn full_queues_are_passed_over_instead_of_blocking() {
    let now = Instant::now();
    let mut registry = Registry::new(limits());
    let (tx0, _rx0) = outbox(4);
    let (tx1, _rx1) = outbox(1);
    registry.connect(0, tx0);
    registry.connect(1, tx1);
    let join = announce(1, 2, &[]).to_string();
    let Request::Announce(a) = parse(&join).unwrap() else {
        unreachable!()
    };
    registry.announce(1, &a, None, &[], now).unwrap();
    let sdp: Box<RawValue> = serde_json::from_str(r#"{"type":"offer","sdp":"x"}"#).unwrap();
    let (mut forwarded, mut dropped) = (0, 0);
    for round in 0..3u8 {
        let msg = Announce {
            info_hash: InfoHash::new([1; 20]),
            peer_id: Id20([1; 20]),
            event: None,
            complete: false,
            offers: vec![Offer {
                offer_id: Id20([round; 20]),
                offer: &sdp,
            }],
            bitfield: None,
            position: None,
        };
        let done = registry.announce(0, &msg, None, &[], now).unwrap();
        forwarded += done.forwarded;
        dropped += done.dropped;
    }
    // The first offer fills the member's queue; it is not chosen after that,
    // so no offer is built for it only to be lost.
    assert_eq!((forwarded, dropped), (1, 0));
}

#[test]
fn piece_reports_build_the_chunk_map() {
    let now = Instant::now();
    let mut h = Harness::new(3);
    // 10 pieces: bitfield 0b1100_0000, 0b0100_0000 = pieces 0, 1, 9.
    let mut with_bits = announce(1, 1, &[]);
    with_bits["x_cs_bitfield"] = json!("c040");
    with_bits["x_cs_pieces"] = json!(10);
    assert_eq!(h.send(0, with_bits, now).unwrap().unwrap().warning, None);
    // The count is now known; a second peer needs none, and reports by `have`.
    h.send(1, announce(1, 2, &[]), now).unwrap();
    h.send(
        1,
        json!({"action": "x_cs_have", "info_hash": bin(1), "peer_id": bin(2), "pieces": [1, 2]}),
        now,
    )
    .unwrap();
    let bad_have =
        json!({"action": "x_cs_have", "info_hash": bin(1), "peer_id": bin(2), "pieces": [10]});
    assert_eq!(h.send(1, bad_have, now), Err(RegistryError::BadPieces));
    let mut seed = announce(1, 3, &[]);
    seed["left"] = json!(0);
    h.send(2, seed, now).unwrap();

    let report = h.registry.pieces(&InfoHash::new([1; 20])).unwrap();
    assert_eq!(report.piece_count, Some(10));
    let counts: Vec<u32> = report.pieces.iter().map(|p| p.count).collect();
    assert_eq!(counts, [2, 3, 2, 1, 1, 1, 1, 1, 1, 2]);
    let holders_of_1: Vec<&str> = report.pieces[1]
        .holders
        .iter()
        .map(|&i| report.peers[i as usize].peer_id.as_str())
        .collect();
    assert_eq!(holders_of_1.len(), 3);

    // A wrong count is a warning, not a failed announce.
    let mut wrong = json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1)});
    wrong["x_cs_bitfield"] = json!("ff");
    wrong["x_cs_pieces"] = json!(8);
    assert_eq!(
        h.send(0, wrong, now).unwrap().unwrap().warning,
        Some(RegistryError::BadPieces)
    );

    // A full bitfield makes a seeder.
    let mut full = json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2)});
    full["x_cs_bitfield"] = json!("ffc0");
    let done = h.send(1, full, now).unwrap().unwrap();
    assert_eq!(done.counts.complete, 2);
    let summary = &h.registry.summaries(10)[0];
    assert_eq!(
        (summary.peers, summary.seeders, summary.piece_count),
        (3, 2, Some(10))
    );
}

#[test]
fn bitfields_are_bounded_per_connection_and_released() {
    let now = Instant::now();
    let mut registry = Registry::new(Limits {
        max_bitfield_bytes_per_connection: 3,
        ..limits()
    });
    let (tx, _rx) = outbox(16);
    registry.connect(0, tx);
    let report = |ih: u8, hex: &str| {
        json!({"action": "announce", "info_hash": bin(ih), "peer_id": bin(1),
               "x_cs_bitfield": hex, "x_cs_pieces": 16})
        .to_string()
    };
    let send = |registry: &mut Registry, text: &str| {
        let Request::Announce(a) = parse(text).unwrap() else {
            unreachable!()
        };
        registry.announce(0, &a, None, &[], now).unwrap().warning
    };
    // 16 pieces = 2 bytes: the first fits, the second does not.
    assert_eq!(send(&mut registry, &report(1, "8000")), None);
    assert_eq!(
        send(&mut registry, &report(2, "8000")),
        Some(RegistryError::PieceBudget)
    );
    // Replacing a bitfield costs nothing more.
    assert_eq!(send(&mut registry, &report(1, "c000")), None);
    // Leaving swarm 1 frees its bytes.
    let stop =
        json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(1), "event": "stopped"})
            .to_string();
    send(&mut registry, &stop);
    assert_eq!(send(&mut registry, &report(2, "8000")), None);
    // Becoming a seeder frees them too.
    assert_eq!(send(&mut registry, &report(2, "ffff")), None);
    assert_eq!(send(&mut registry, &report(3, "8000")), None);
}

#[test]
fn an_announce_with_pieces_gets_the_swarm_facts_and_a_webtorrent_client_none() {
    let now = Instant::now();
    let mut h = Harness::new(3);
    // 10 pieces; the first viewer holds 0-1 and plays at 0.
    let mut first = announce(1, 1, &[]);
    first["x_cs_bitfield"] = json!("c000");
    first["x_cs_pieces"] = json!(10);
    first["x_cs_position"] = json!(0);
    let facts = h.send(0, first, now).unwrap().unwrap().facts.unwrap();
    assert_eq!((facts.peers, facts.seeders, facts.first), (1, 0, 2));
    assert_eq!(facts.holders, vec![0; 8]);
    // Alone, every unheld piece it wants soon is its own to fetch.
    assert_eq!(facts.fetch, (2..10).collect::<Vec<u32>>());
    // A second viewer holding 0-3 sees the first's pieces counted.
    let mut second = announce(1, 2, &[]);
    second["x_cs_bitfield"] = json!("f000");
    second["x_cs_position"] = json!(1);
    let facts = h.send(1, second, now).unwrap().unwrap().facts.unwrap();
    assert_eq!((facts.peers, facts.first), (2, 4));
    assert_eq!(facts.holders, vec![0; 6]);
    // A WebTorrent client reports no pieces and is told nothing new.
    let done = h.send(2, announce(1, 3, &[]), now).unwrap().unwrap();
    assert_eq!(done.facts, None);
}

#[test]
fn offers_go_to_members_whose_queue_has_room() {
    let now = Instant::now();
    let mut h = Harness::new(3);
    h.send(1, announce(9, 2, &[]), now).unwrap();
    h.send(2, announce(9, 3, &[]), now).unwrap();
    // Connection 1 does not read: its queue (16 messages) is full.
    let full = h.registry.conns[&1].outbox.clone();
    while full.try_send("{}".into()).is_ok() {}
    for round in 0..8u8 {
        let done = h
            .send(0, announce(9, 1, &[100 + round]), now)
            .unwrap()
            .unwrap();
        // The one offer goes to the member with room, not to be lost.
        assert_eq!((done.forwarded, done.dropped), (1, 0), "round {round}");
    }
    assert_eq!(h.received(2).len(), 8);
    // Once connection 2 is full too, nobody is chosen and nothing is built.
    let other = h.registry.conns[&2].outbox.clone();
    while other.try_send("{}".into()).is_ok() {}
    let done = h.send(0, announce(9, 1, &[120]), now).unwrap().unwrap();
    assert_eq!((done.forwarded, done.dropped), (0, 0));
    // Connection 1 reads its queue: it is chosen again.
    h.received(1);
    let done = h
        .send(0, announce(9, 1, &[121, 122]), now)
        .unwrap()
        .unwrap();
    assert_eq!((done.forwarded, done.dropped), (1, 0));
    let got = h.received(1);
    assert_eq!(got.last().unwrap()["peer_id"], bin(1));
}
