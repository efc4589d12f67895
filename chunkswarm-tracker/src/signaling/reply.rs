//! The tracker's messages to clients, from the protocol's one
//! implementation in `chunkswarm_core::tracker_protocol::reply` (announce
//! and scrape answers, relayed offers and answers, refusals), whose reader
//! the driver uses. The tests here read what the tracker writes, its ICE
//! grants included, back through the driver.

pub(crate) use chunkswarm_core::tracker_protocol::reply::{
    SwarmCounts, announce, answer, failure, failure_text, offer, scrape,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::ids::Id20;
    use chunkswarm_core::metainfo::InfoHash;
    use chunkswarm_core::swarm::SwarmFacts;
    use serde_json::Value;
    use serde_json::value::RawValue;

    #[test]
    fn messages_are_valid_json_with_binary_ids() {
        let ih = InfoHash::new([0x22; 20]);
        let counts = SwarmCounts {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        };
        let facts = SwarmFacts {
            peers: 3,
            seeders: 1,
            first: 7,
            holders: vec![2, 1, 0],
            fetch: vec![9],
        };
        let text = announce(
            &ih,
            120,
            counts,
            Some("w"),
            Some(r#"{"ttl":1}"#),
            Some(&facts),
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["x_cs_swarm"],
            serde_json::json!({"peers": 3, "seeders": 1, "first": 7, "holders": [2, 1, 0], "fetch": [9]})
        );
        assert_eq!(v["warning message"], "w");
        assert_eq!(v["x_cs_ice"]["ttl"], 1);
        assert_eq!(v["info_hash"], "\"".repeat(20));
        assert_eq!(v["complete"], 1);
        assert_eq!(v["incomplete"], 2);

        let sdp =
            serde_json::from_str::<Box<RawValue>>(r#"{"type":"offer","sdp":"v=0\r\n"}"#).unwrap();
        let v: Value =
            serde_json::from_str(&offer(&ih, &Id20([0; 20]), &Id20([0xff; 20]), &sdp)).unwrap();
        assert_eq!(v["offer"]["sdp"], "v=0\r\n");
        assert_eq!(v["peer_id"], "\0".repeat(20));
        assert_eq!(v["offer_id"], "\u{ff}".repeat(20));

        let v: Value = serde_json::from_str(&scrape(&[(ih, counts)], 120)).unwrap();
        assert_eq!(v["files"]["\"".repeat(20)]["downloaded"], 3);
    }

    /// The other direction of the protocol's round trip (the core's tests
    /// hold the driver's messages to the tracker's parser, and the relayed
    /// offers, answers and refusals to the driver's reader): the announce
    /// and scrape answers written here read back in the driver.
    #[test]
    fn the_driver_reads_the_announce_and_scrape_answers() {
        use std::time::{Duration, UNIX_EPOCH};

        use chunkswarm_core::driver::signal::{SignalIn, SignalParseError};

        use crate::ice::{IceConfig, IceIssuer, TurnSecret};

        // Bytes that need every kind of JSON escape.
        let awkward = |seed: u8| {
            let mut id = [0u8; 20];
            for (i, b) in id.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(13).wrapping_add(seed);
            }
            id[1] = b'"';
            id[2] = b'\\';
            id
        };
        let ih = InfoHash::new(awkward(1));
        let counts = SwarmCounts {
            complete: 4,
            incomplete: 5,
            downloaded: 6,
        };
        let config = IceConfig {
            urls: vec!["turn:127.0.0.1:3478".into()],
            turn_secret: Some(TurnSecret::new("north").unwrap()),
            ttl: Duration::from_secs(3600),
        };
        let issuer = IceIssuer::new(&config, Duration::from_secs(120)).unwrap();
        let grant = issuer.grant("p", UNIX_EPOCH + Duration::from_secs(1_000));
        let facts = SwarmFacts {
            peers: 9,
            seeders: 2,
            first: 30,
            holders: vec![3, 0, 1],
            fetch: vec![31],
        };
        let Ok(SignalIn::Announced {
            info_hash,
            interval,
            complete,
            incomplete,
            ice: Some(ice),
            facts: Some(read_facts),
        }) = SignalIn::parse(&announce(
            &ih,
            120,
            counts,
            None,
            Some(&grant),
            Some(&facts),
        ))
        else {
            panic!("not read as an announce reply with ICE servers and swarm facts");
        };
        assert_eq!(read_facts, facts);
        assert_eq!(info_hash, ih);
        assert_eq!(interval, Some(Duration::from_secs(120)));
        assert_eq!((complete, incomplete), (Some(4), Some(5)));
        assert_eq!(ice.expires, Some(4_600));
        assert_eq!(ice.servers[0].urls, ["turn:127.0.0.1:3478"]);
        assert_eq!(ice.servers[0].username, "4600:p");

        // A warning reaches the driver as the tracker's text.
        assert_eq!(
            SignalIn::parse(&announce(&ih, 120, counts, Some("slow down"), None, None)),
            Ok(SignalIn::Failure {
                info_hash: Some(ih),
                reason: "slow down".into(),
            })
        );
        // The driver never scrapes: a scrape answer is skipped, not misread.
        assert_eq!(
            SignalIn::parse(&scrape(&[(ih, counts)], 120)),
            Err(SignalParseError::Ignored)
        );
    }
}
