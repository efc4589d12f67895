//! Every writer held to the reader: what the tracker writes, a client
//! reads back field for field; and bad input is a typed error.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::*;
use crate::metainfo::InfoHash;
use crate::swarm::MAX_FACT_PIECES;

/// Bytes that need every kind of JSON escape.
fn awkward(seed: u8) -> [u8; 20] {
    let mut id = [0u8; 20];
    for (i, b) in id.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(29).wrapping_add(seed);
    }
    id[5] = b'"';
    id[6] = b'\\';
    id
}

fn facts() -> SwarmFacts {
    SwarmFacts {
        peers: 9,
        seeders: 2,
        first: 30,
        holders: vec![3, 0, u32::MAX],
        fetch: vec![31],
    }
}

#[test]
fn an_announce_answer_reads_back_field_for_field() {
    let info_hash = InfoHash::new(awkward(1));
    let counts = SwarmCounts {
        complete: 4,
        incomplete: u32::MAX,
        downloaded: 6,
    };
    let ice = r#"{"iceServers":[{"urls":["turn:127.0.0.1:3478"]}],"ttl":60}"#;
    let text = announce(
        &info_hash,
        120,
        counts,
        Some("slow \"down\"\n"),
        Some(ice),
        Some(&facts()),
    );
    assert_eq!(
        parse(&text),
        Ok(Reply::Announced(Announced {
            info_hash,
            interval: Some(120),
            complete: Some(4),
            incomplete: Some(u64::from(u32::MAX)),
            warning: Some("slow \"down\"\n".into()),
            ice: Some(ice),
            facts: Some(facts()),
        }))
    );
    let plain = announce(&info_hash, 0, SwarmCounts::default(), None, None, None);
    assert_eq!(
        parse(&plain),
        Ok(Reply::Announced(Announced {
            info_hash,
            interval: Some(0),
            complete: Some(0),
            incomplete: Some(0),
            warning: None,
            ice: None,
            facts: None,
        }))
    );
}

#[test]
fn a_scrape_answer_reads_back_in_order() {
    let files: Vec<(InfoHash, SwarmCounts)> = (0..3u8)
        .map(|i| {
            let counts = SwarmCounts {
                complete: u32::from(i),
                incomplete: 10 + u32::from(i),
                downloaded: u64::MAX - u64::from(i),
            };
            (InfoHash::new(awkward(200 - i)), counts)
        })
        .collect();
    assert_eq!(
        parse(&scrape(&files, 90)),
        Ok(Reply::Scrape(Scraped {
            files: files.clone(),
            min_request_interval: Some(90),
        }))
    );
    assert_eq!(
        parse(&scrape(&[], 90)),
        Ok(Reply::Scrape(Scraped {
            files: Vec::new(),
            min_request_interval: Some(90),
        }))
    );
}

#[test]
fn relayed_offers_answers_and_refusals_read_back() {
    let info_hash = InfoHash::new(awkward(3));
    let (from, offer_id) = (BinaryId(awkward(4)), BinaryId(awkward(5)));
    let body = |kind: &str, sdp: &str| {
        serde_json::from_str::<Box<RawValue>>(&format!(r#"{{"type":"{kind}","sdp":"{sdp}"}}"#))
            .unwrap()
    };
    let relayed = |sdp: &'static str| Relayed {
        info_hash,
        from,
        offer_id,
        sdp: sdp.into(),
    };
    assert_eq!(
        parse(&offer(
            &info_hash,
            &from,
            &offer_id,
            &body("offer", "v=0\\r\\n")
        )),
        Ok(Reply::Offer(relayed("v=0\r\n")))
    );
    // An SDP without escapes is borrowed from the text, not copied.
    let text = answer(&info_hash, &from, &offer_id, &body("answer", "v=0"));
    let Ok(Reply::Answer(read)) = parse(&text) else {
        panic!("not an answer: {text}")
    };
    assert_eq!(read, relayed("v=0"));
    assert!(matches!(read.sdp, Cow::Borrowed(_)));

    assert_eq!(
        parse(&failure_text("announce", "no \"room\"", Some(&info_hash))),
        Ok(Reply::Failure(Failure {
            info_hash: Some(info_hash),
            reason: "no \"room\"".into(),
        }))
    );
    assert_eq!(
        parse(&failure_text("scrape", "rate limited", None)),
        Ok(Reply::Failure(Failure {
            info_hash: None,
            reason: "rate limited".into(),
        }))
    );
}

#[test]
fn swarm_facts_are_capped_and_a_bad_summary_is_left_out() {
    let info_hash = InfoHash::new(awkward(6));
    let long = SwarmFacts {
        holders: vec![1; 500],
        fetch: (0..500).collect(),
        ..facts()
    };
    let text = announce(
        &info_hash,
        1,
        SwarmCounts::default(),
        None,
        None,
        Some(&long),
    );
    let Ok(Reply::Announced(read)) = parse(&text) else {
        panic!("not an announce answer")
    };
    let read = read.facts.unwrap();
    assert_eq!(read.holders, vec![1; MAX_FACT_PIECES]);
    assert_eq!(read.fetch, (0..MAX_FACT_PIECES as u32).collect::<Vec<_>>());

    let id = serde_json::to_string(&awkward(6).map(char::from).iter().collect::<String>()).unwrap();
    for bad in [
        r#"{"peers":-1,"seeders":0,"first":0,"holders":[],"fetch":[]}"#,
        r#"{"peers":1,"seeders":0,"first":0,"holders":[1.5],"fetch":[]}"#,
        r#"{"peers":1,"seeders":0,"first":0,"holders":[]}"#,
        r#"[1,2]"#,
    ] {
        let text = format!(r#"{{"action":"announce","info_hash":{id},"x_cs_swarm":{bad}}}"#);
        let Ok(Reply::Announced(read)) = parse(&text) else {
            panic!("the answer itself was refused: {text}")
        };
        assert_eq!(read.facts, None, "{bad}");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let id = |seed| {
        serde_json::to_string(&awkward(seed).map(char::from).iter().collect::<String>()).unwrap()
    };
    let (ih, peer) = (id(7), id(8));
    let cases = [
        (String::new(), ReplyError::Json),
        ("{".into(), ReplyError::Json),
        ("[]".into(), ReplyError::Json),
        (r#"["action","announce"]"#.into(), ReplyError::Json),
        ("null".into(), ReplyError::Json),
        (
            r#"{"action":"announce","action":"scrape"}"#.into(),
            ReplyError::Json,
        ),
        ("{}".into(), ReplyError::Action),
        (r#"{"action":7}"#.into(), ReplyError::Action),
        (r#"{"action":"x_cs_have"}"#.into(), ReplyError::Action),
        (r#"{"action":"announce"}"#.into(), ReplyError::InfoHash),
        (
            r#"{"action":"announce","info_hash":"short"}"#.into(),
            ReplyError::InfoHash,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{ih},"offer":{{"sdp":"x"}}}}"#),
            ReplyError::PeerId,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{ih},"peer_id":{peer},"answer":{{"sdp":"x"}}}}"#
            ),
            ReplyError::OfferId,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{ih},"peer_id":{peer},"offer_id":{peer},"offer":{{"type":"offer"}}}}"#
            ),
            ReplyError::Sdp,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{ih},"peer_id":{peer},"offer_id":{peer},"offer":"v=0"}}"#
            ),
            ReplyError::Sdp,
        ),
        (r#"{"action":"scrape"}"#.into(), ReplyError::Files),
        (
            r#"{"action":"scrape","files":{"short":{"complete":1,"incomplete":0,"downloaded":0}}}"#
                .into(),
            ReplyError::Files,
        ),
        (
            format!(
                r#"{{"action":"scrape","files":{{{ih}:{{"complete":-1,"incomplete":0,"downloaded":0}}}}}}"#
            ),
            ReplyError::Files,
        ),
    ];
    for (text, error) in cases {
        assert_eq!(parse(&text), Err(error), "{text}");
    }
}

#[test]
fn every_cut_of_a_written_message_is_refused_not_panicked_on() {
    let info_hash = InfoHash::new(awkward(9));
    let counts = SwarmCounts::default();
    let ice = r#"{"iceServers":[{"urls":"stun:127.0.0.1:3478"}]}"#;
    let whole = [
        announce(
            &info_hash,
            120,
            counts,
            Some("w"),
            Some(ice),
            Some(&facts()),
        ),
        scrape(&[(info_hash, counts)], 120),
        failure_text("announce", "é\u{0}\"", Some(&info_hash)),
    ];
    for text in &whole {
        assert!(parse(text).is_ok(), "{text}");
        for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
            assert!(parse(&text[..cut]).is_err(), "{}", &text[..cut]);
        }
    }
}
