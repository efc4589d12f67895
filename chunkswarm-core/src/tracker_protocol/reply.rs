//! What the tracker writes to clients: offers and answers relayed between
//! peers (copied verbatim, ids as binary strings, as WebTorrent's tracker
//! writes them) and refusals. The driver reads them with
//! [`SignalIn::parse`](crate::driver::signal::SignalIn::parse); the tests
//! of this module hold the two together.

use serde_json::value::RawValue;

use super::ids::{BinaryId, push_binary, push_info_hash};
use super::request::Refusal;
use crate::metainfo::InfoHash;

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
