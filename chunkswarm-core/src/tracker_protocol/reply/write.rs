//! Writing what the tracker sends: announce and scrape answers, offers and
//! answers relayed between peers (copied verbatim), refusals. Each writes
//! straight into one `String` sized up front.

use std::fmt::Write as _;

use serde_json::value::RawValue;

use super::SwarmCounts;
use crate::metainfo::InfoHash;
use crate::swarm::SwarmFacts;
use crate::tracker_protocol::ids::{BinaryId, push_binary, push_info_hash};
use crate::tracker_protocol::request::Refusal;

/// An offer forwarded to another peer of the swarm.
pub fn offer(
    info_hash: &InfoHash,
    from: &BinaryId,
    offer_id: &BinaryId,
    offer: &RawValue,
) -> String {
    signal("offer", info_hash, from, offer_id, offer)
}

/// An answer relayed to the peer that made the offer.
pub fn answer(
    info_hash: &InfoHash,
    from: &BinaryId,
    offer_id: &BinaryId,
    answer: &RawValue,
) -> String {
    signal("answer", info_hash, from, offer_id, answer)
}

fn signal(
    kind: &str,
    info_hash: &InfoHash,
    from: &BinaryId,
    offer_id: &BinaryId,
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

/// `{"action":..,"failure reason":..,"info_hash":..}`.
pub fn failure(refusal: &Refusal) -> String {
    failure_text(
        refusal.action.as_str(),
        &refusal.error.to_string(),
        refusal.info_hash.as_ref(),
    )
}

/// A failure with any reason text.
pub fn failure_text(action: &str, reason: &str, info_hash: Option<&InfoHash>) -> String {
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

/// Appends `text` as a JSON string.
pub fn push_json_str(out: &mut String, text: &str) {
    // Serializing a str to JSON cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// `{"action":"announce","interval":..,"info_hash":..,"complete":..,"incomplete":..}`.
/// A `warning`, if any, goes in `warning message`, which WebTorrent clients
/// report but otherwise ignore; an ICE grant (a JSON object) in `x_cs_ice`;
/// swarm facts in `x_cs_swarm` (`{"peers","seeders","first","holders":[..],"fetch":[..]}`).
pub fn announce(
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
pub fn scrape(files: &[(InfoHash, SwarmCounts)], interval_secs: u64) -> String {
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
