//! The WebTorrent tracker messages on the tracker's hot path and the
//! driver's: parsing a client's announce with 10 offers (WebTorrent's
//! maximum), writing a relayed offer and an announce answer (with ICE
//! servers and swarm facts), and a client reading both, typed
//! (`tracker_protocol::reply::parse`) and as the driver's `SignalIn`.
//!
//! `nice -n 10 cargo bench -p chunkswarm-tracker --bench messages`
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use chunkswarm_core::driver::signal::SignalIn;
use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::swarm::SwarmFacts;
use chunkswarm_core::tracker_protocol::{self, BinaryId, SwarmCounts, reply};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use serde_json::value::RawValue;

/// An id whose bytes need JSON escapes, as real binary ids often do.
fn id(seed: u8) -> [u8; 20] {
    let mut id = [0u8; 20];
    for (i, b) in id.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(seed);
    }
    id
}

fn binary(bytes: &[u8; 20]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// An SDP of the size browsers send (about 600 bytes).
fn sdp() -> String {
    let mut sdp = String::from("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n");
    sdp.push_str("t=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n");
    sdp.push_str("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n");
    sdp.push_str("a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n");
    sdp.push_str("a=ice-options:trickle\r\na=fingerprint:sha-256 ");
    sdp.push_str(&"AB:".repeat(31));
    sdp.push_str("AB\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n");
    sdp.push_str("a=max-message-size:262144\r\n");
    sdp
}

fn announce_with_offers() -> String {
    let offers: Vec<_> = (0..10)
        .map(|i| json!({"offer_id": binary(&id(i)), "offer": {"type": "offer", "sdp": sdp()}}))
        .collect();
    json!({
        "action": "announce", "info_hash": binary(&id(100)), "peer_id": binary(&id(101)),
        "numwant": 10, "uploaded": 0, "downloaded": 1_048_576, "left": 52_428_800,
        "event": "started", "offers": offers,
        "x_cs_bitfield": "ff".repeat(250), "x_cs_pieces": 2_000, "x_cs_position": 40,
    })
    .to_string()
}

/// An announce reply as the tracker writes it, ICE grant and swarm facts
/// included.
fn announce_reply() -> String {
    json!({
        "action": "announce", "interval": 120, "info_hash": binary(&id(100)),
        "complete": 12, "incomplete": 340,
        "x_cs_ice": {"iceServers": [{"urls": ["turn:127.0.0.1:3478?transport=udp"],
            "username": "1767225600:0123456789abcdef", "credential": "c2VjcmV0c2VjcmV0c2VjcmV0"}],
            "ttl": 3600, "expires": 1_767_225_600u64},
        "x_cs_swarm": {"peers": 352, "seeders": 12, "first": 40,
            "holders": (0..64).map(|i| 300 - i).collect::<Vec<u32>>(), "fetch": [104, 105]},
    })
    .to_string()
}

fn messages(c: &mut Criterion) {
    let announce = announce_with_offers();
    c.bench_function("tracker_parse_announce_10_offers", |b| {
        b.iter(|| black_box(tracker_protocol::parse(black_box(&announce)).is_ok()))
    });

    let info_hash = InfoHash::new(id(100));
    let offer_body =
        serde_json::from_str::<Box<RawValue>>(&json!({"type": "offer", "sdp": sdp()}).to_string())
            .unwrap();
    let (from, offer_id) = (BinaryId(id(101)), BinaryId(id(3)));
    c.bench_function("tracker_write_relayed_offer", |b| {
        b.iter(|| black_box(reply::offer(&info_hash, &from, &offer_id, &offer_body)))
    });

    let relayed = reply::offer(&info_hash, &from, &offer_id, &offer_body);
    c.bench_function("driver_read_relayed_offer", |b| {
        b.iter(|| black_box(SignalIn::parse(black_box(&relayed)).is_ok()))
    });

    let announced = announce_reply();
    c.bench_function("driver_read_announce_reply", |b| {
        b.iter(|| black_box(SignalIn::parse(black_box(&announced)).is_ok()))
    });
    c.bench_function("client_read_announce_reply_typed", |b| {
        b.iter(|| black_box(reply::parse(black_box(&announced)).is_ok()))
    });

    let ice: serde_json::Value = serde_json::from_str(&announced).unwrap();
    let ice = ice["x_cs_ice"].to_string();
    let facts = SwarmFacts {
        peers: 352,
        seeders: 12,
        first: 40,
        holders: (0..64).map(|i| 300 - i).collect(),
        fetch: vec![104, 105],
    };
    let counts = SwarmCounts {
        complete: 12,
        incomplete: 340,
        downloaded: 7,
    };
    c.bench_function("tracker_write_announce_reply", |b| {
        b.iter(|| {
            black_box(reply::announce(
                &info_hash,
                120,
                counts,
                None,
                Some(&ice),
                Some(&facts),
            ))
        })
    });
}

criterion_group!(benches, messages);
criterion_main!(benches);
