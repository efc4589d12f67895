//! Writing tracker messages. Offers and answers are copied verbatim; ids are
//! written as binary strings, as WebTorrent's tracker writes them.

use std::fmt::Write as _;

use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::swarm::SwarmFacts;
use serde_json::value::RawValue;

use super::ids::{Id20, push_binary, push_info_hash};
use super::message::Refusal;

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

/// An offer forwarded to another peer of the swarm.
pub(crate) fn offer(
    info_hash: &InfoHash,
    from: &Id20,
    offer_id: &Id20,
    offer: &RawValue,
) -> String {
    signal("offer", info_hash, from, offer_id, offer)
}

/// An answer relayed to the peer that made the offer.
pub(crate) fn answer(
    info_hash: &InfoHash,
    from: &Id20,
    offer_id: &Id20,
    answer: &RawValue,
) -> String {
    signal("answer", info_hash, from, offer_id, answer)
}

fn signal(
    kind: &str,
    info_hash: &InfoHash,
    from: &Id20,
    offer_id: &Id20,
    sdp: &RawValue,
) -> String {
    // Room for the ids even when escaped (a binary id is 20 to 120 bytes).
    let mut out = String::with_capacity(sdp.get().len() + 256);
    out.push_str(r#"{"action":"announce",""#);
    out.push_str(kind);
    out.push_str(r#"":"#);
    out.push_str(sdp.get());
    out.push_str(r#","offer_id":"#);
    push_binary(&mut out, &offer_id.0);
    out.push_str(r#","peer_id":"#);
    push_binary(&mut out, &from.0);
    out.push_str(r#","info_hash":"#);
    push_info_hash(&mut out, info_hash);
    out.push('}');
    out
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

/// `{"action":..,"failure reason":..,"info_hash":..}`.
pub(crate) fn failure(refusal: &Refusal) -> String {
    failure_text(
        refusal.action.as_str(),
        &refusal.error.to_string(),
        refusal.info_hash.as_ref(),
    )
}

/// A failure with any reason text.
pub(crate) fn failure_text(action: &str, reason: &str, info_hash: Option<&InfoHash>) -> String {
    let mut out = String::with_capacity(100);
    out.push_str(r#"{"action":"#);
    push_json_str(&mut out, action);
    out.push_str(r#","failure reason":"#);
    push_json_str(&mut out, reason);
    if let Some(info_hash) = info_hash {
        out.push_str(r#","info_hash":"#);
        push_info_hash(&mut out, info_hash);
    }
    out.push('}');
    out
}

fn push_json_str(out: &mut String, text: &str) {
    // Serializing a str to JSON cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
}
