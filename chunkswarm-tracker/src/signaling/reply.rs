//! Writing tracker messages: announce and scrape answers here; relayed
//! offers and answers and refusals are written by the protocol's one
//! implementation in `chunkswarm_core::tracker_protocol`, which the driver's
//! reader is tested against.

use std::fmt::Write as _;

use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::swarm::SwarmFacts;
use chunkswarm_core::tracker_protocol::reply::push_json_str;
pub(crate) use chunkswarm_core::tracker_protocol::reply::{answer, failure, failure_text, offer};

use super::ids::push_info_hash;

/// Swarm counts as `announce` and `scrape` answers carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SwarmCounts {
    /// Seeders.
    pub(crate) complete: u32,
    /// Leechers.
    pub(crate) incomplete: u32,
    /// `completed` events seen.
    pub(crate) downloaded: u64,
}

/// `{"action":"announce","interval":..,"info_hash":..,"complete":..,"incomplete":..}`.
/// A `warning`, if any, goes in `warning message`, which WebTorrent clients
/// report but otherwise ignore; an ICE grant (a JSON object) in `x_cs_ice`;
/// swarm facts in `x_cs_swarm` (see [`swarm_facts`]).
pub(crate) fn announce(
    info_hash: &InfoHash,
    interval_secs: u64,
    counts: SwarmCounts,
    warning: Option<&str>,
    ice: Option<&str>,
    facts: Option<&SwarmFacts>,
) -> String {
    let mut out = String::with_capacity(120);
    out.push_str(r#"{"action":"announce","interval":"#);
    let _ = write!(out, "{interval_secs}");
    out.push_str(r#","info_hash":"#);
    push_info_hash(&mut out, info_hash);
    let _ = write!(
        out,
        r#","complete":{},"incomplete":{}"#,
        counts.complete, counts.incomplete
    );
    if let Some(warning) = warning {
        out.push_str(r#","warning message":"#);
        push_json_str(&mut out, warning);
    }
    if let Some(ice) = ice {
        out.push_str(r#","x_cs_ice":"#);
        out.push_str(ice);
    }
    if let Some(facts) = facts {
        out.push_str(r#","x_cs_swarm":"#);
        swarm_facts(&mut out, facts);
    }
    out.push('}');
    out
}

/// `{"peers":n,"seeders":n,"first":i,"holders":[n..],"fetch":[i..]}`.
fn swarm_facts(out: &mut String, facts: &SwarmFacts) {
    let list = |out: &mut String, values: &[u32]| {
        out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{v}");
        }
        out.push(']');
    };
    let _ = write!(
        out,
        r#"{{"peers":{},"seeders":{},"first":{},"holders":"#,
        facts.peers, facts.seeders, facts.first
    );
    list(out, &facts.holders);
    out.push_str(r#","fetch":"#);
    list(out, &facts.fetch);
    out.push('}');
}

/// `{"action":"scrape","files":{<info_hash>:{complete,incomplete,downloaded}},"flags":..}`.
pub(crate) fn scrape(files: &[(InfoHash, SwarmCounts)], interval_secs: u64) -> String {
    let mut out = String::with_capacity(40 + files.len() * 80);
    out.push_str(r#"{"action":"scrape","files":{"#);
    for (i, (info_hash, counts)) in files.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_info_hash(&mut out, info_hash);
        let _ = write!(
            out,
            r#":{{"complete":{},"incomplete":{},"downloaded":{}}}"#,
            counts.complete, counts.incomplete, counts.downloaded
        );
    }
    let _ = write!(
        out,
        r#"}},"flags":{{"min_request_interval":{interval_secs}}}}}"#
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::ids::Id20;
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
