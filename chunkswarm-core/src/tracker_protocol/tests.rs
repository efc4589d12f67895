//! Both sides of the protocol held together: what the driver writes, the
//! tracker's parser reads back field for field.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::driver::signal::{Announce as OutAnnounce, SignalIn, SignalOut};
use crate::metainfo::InfoHash;
use crate::piece_map::Bitfield;

/// Ids whose bytes need every kind of JSON escape: control characters,
/// quotes, backslashes, bytes above 0x7f.
fn awkward_id(seed: u8) -> [u8; 20] {
    let mut id = [0u8; 20];
    for (i, b) in id.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(13).wrapping_add(seed);
    }
    id[3] = b'"';
    id[4] = b'\\';
    id
}

fn announce(event: Option<AnnounceEvent>, left: u64, bitfield: Option<Bitfield>) -> OutAnnounce {
    OutAnnounce {
        info_hash: InfoHash::new(awkward_id(1)),
        peer_id: awkward_id(2),
        numwant: 3,
        uploaded: 10,
        downloaded: 20,
        left,
        event,
        offers: vec![
            (awkward_id(3), "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into()),
            (awkward_id(4), "v=0\r\n\"quoted\"\r\n".into()),
        ],
        bitfield,
        position: Some(7),
    }
}

#[test]
fn the_trackers_parser_reads_every_announce_the_driver_writes() {
    let bits = Bitfield::from_bytes(&[0xa0, 0x40], 10).unwrap();
    let events = [
        None,
        Some(AnnounceEvent::Started),
        Some(AnnounceEvent::Stopped),
        Some(AnnounceEvent::Completed),
    ];
    for (event, left, bitfield) in [
        (events[0], 0, None),
        (events[1], 5, Some(bits.clone())),
        (events[2], 5, None),
        (events[3], 0, Some(bits.clone())),
    ] {
        let sent = announce(event, left, bitfield.clone());
        let text = SignalOut::Announce(sent.clone()).to_json();
        let Ok(Request::Announce(read)) = parse(&text) else {
            panic!("not read as an announce: {text}")
        };
        assert_eq!(read.info_hash, sent.info_hash);
        assert_eq!(read.peer_id, BinaryId(sent.peer_id));
        assert_eq!(read.event, event);
        assert_eq!(read.complete, left == 0);
        assert_eq!(read.position, Some(7));
        assert_eq!(
            read.bitfield,
            bitfield.map(|b| (b.to_bytes().to_vec(), Some(b.len())))
        );
        let offers: Vec<([u8; 20], String)> = read
            .offers
            .iter()
            .map(|o| {
                let offer: serde_json::Value = serde_json::from_str(o.offer.get()).unwrap();
                assert_eq!(offer["type"], "offer");
                (o.offer_id.0, offer["sdp"].as_str().unwrap().to_owned())
            })
            .collect();
        assert_eq!(offers, sent.offers);
    }
}

#[test]
fn the_trackers_parser_reads_the_drivers_answers_and_haves() {
    let info_hash = InfoHash::new(awkward_id(5));
    let answer = SignalOut::Answer {
        info_hash,
        peer_id: awkward_id(6),
        to_peer_id: awkward_id(7),
        offer_id: awkward_id(8),
        sdp: "v=0\r\na=setup:active\r\n".into(),
    };
    let text = answer.to_json();
    let Ok(Request::Answer(read)) = parse(&text) else {
        panic!("not read as an answer: {text}")
    };
    assert_eq!(read.info_hash, info_hash);
    assert_eq!(read.peer_id, BinaryId(awkward_id(6)));
    assert_eq!(read.to_peer_id, BinaryId(awkward_id(7)));
    assert_eq!(read.offer_id, BinaryId(awkward_id(8)));
    let body: serde_json::Value = serde_json::from_str(read.answer.get()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"type": "answer", "sdp": "v=0\r\na=setup:active\r\n"})
    );

    let have = SignalOut::Have {
        info_hash,
        peer_id: awkward_id(9),
        pieces: vec![0, 3, u32::MAX],
    };
    let Ok(Request::Have(read)) = parse(&have.to_json()) else {
        panic!("not read as a have")
    };
    assert_eq!(read.info_hash, info_hash);
    assert_eq!(read.peer_id, BinaryId(awkward_id(9)));
    assert_eq!(read.pieces, [0, 3, u32::MAX]);
}

#[test]
fn ids_written_by_either_side_read_the_same() {
    for seed in 0..=255u8 {
        let id = awkward_id(seed);
        let mut fast = String::new();
        ids::push_binary(&mut fast, &id);
        let via_serde =
            serde_json::to_string(&id.iter().map(|&b| char::from(b)).collect::<String>()).unwrap();
        assert_eq!(ids::decode_json_binary(&fast), Some(id));
        assert_eq!(ids::decode_json_binary(&via_serde), Some(id));
        let text: String = serde_json::from_str(&fast).unwrap();
        assert_eq!(ids::decode_binary(&text), Some(id));
    }
}

#[test]
fn the_driver_reads_the_offers_answers_and_refusals_the_tracker_writes() {
    let info_hash = InfoHash::new(awkward_id(10));
    let (from, offer_id) = (BinaryId(awkward_id(11)), BinaryId(awkward_id(12)));
    let body = |kind: &str| {
        serde_json::from_str::<Box<serde_json::value::RawValue>>(&format!(
            r#"{{"type":"{kind}","sdp":"v=0\r\n\"x\""}}"#
        ))
        .unwrap()
    };
    assert_eq!(
        SignalIn::parse(&reply::offer(&info_hash, &from, &offer_id, &body("offer"))),
        Ok(SignalIn::Offer {
            info_hash,
            from: from.0,
            offer_id: offer_id.0,
            sdp: "v=0\r\n\"x\"".into(),
        })
    );
    assert_eq!(
        SignalIn::parse(&reply::answer(
            &info_hash,
            &from,
            &offer_id,
            &body("answer")
        )),
        Ok(SignalIn::Answer {
            info_hash,
            from: from.0,
            offer_id: offer_id.0,
            sdp: "v=0\r\n\"x\"".into(),
        })
    );
    // A refusal of a message the tracker could not read, with the info
    // hash it echoes.
    let refused = parse(&format!(
        r#"{{"action":"announce","info_hash":{},"peer_id":"short"}}"#,
        serde_json::to_string(
            &awkward_id(10)
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
        )
        .unwrap()
    ))
    .unwrap_err();
    assert_eq!(
        SignalIn::parse(&reply::failure(&refused)),
        Ok(SignalIn::Failure {
            info_hash: Some(info_hash),
            reason: MessageError::PeerId.to_string(),
        })
    );
    assert_eq!(
        SignalIn::parse(&reply::failure_text("scrape", "rate \"limited\"", None)),
        Ok(SignalIn::Failure {
            info_hash: None,
            reason: "rate \"limited\"".into(),
        })
    );
}
