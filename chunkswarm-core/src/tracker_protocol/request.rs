//! What clients send the tracker: [`parse`] reads one text message into a
//! typed [`Request`], borrowing from the text (offers and answers stay raw
//! JSON, to be forwarded verbatim).
//!
//! Every field is checked on its own so that an error can still echo the
//! message's `action` and `info_hash` (a WebTorrent client ignores tracker
//! messages without its info hash). Unknown fields are ignored.

use std::borrow::Cow;

use crate::metainfo::InfoHash;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::ids::{BinaryId, decode_binary, decode_json_binary};

/// The most pieces a `x_cs_have` may list.
const MAX_HAVE_PIECES: usize = 4096;

/// A client message the tracker understood.
#[derive(Debug)]
pub enum Request<'a> {
    /// An `announce`, possibly with offers to forward.
    Announce(Announce<'a>),
    /// An `announce` carrying an `answer` to relay.
    Answer(Answer<'a>),
    /// A `scrape`; empty means every swarm.
    Scrape(Vec<InfoHash>),
    /// The `x_cs_have` extension: pieces a peer gained.
    Have(Have),
}

/// The `event` of an announce; a periodic re-announce has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// The peer joins the swarm.
    Started,
    /// The peer leaves the swarm.
    Stopped,
    /// The peer finished downloading.
    Completed,
}

impl AnnounceEvent {
    /// The event's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Stopped => "stopped",
            Self::Completed => "completed",
        }
    }
}

/// An announce without an answer.
#[derive(Debug)]
pub struct Announce<'a> {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: BinaryId,
    /// `None` for a periodic re-announce (no `event`, or `update`).
    pub event: Option<AnnounceEvent>,
    /// `left` is zero: the peer has everything (a seeder).
    pub complete: bool,
    /// Offers to forward to other members of the swarm.
    pub offers: Vec<Offer<'a>>,
    /// The chunkswarm extension `x_cs_bitfield`, with `x_cs_pieces` if given.
    pub bitfield: Option<(Vec<u8>, Option<u32>)>,
    /// The chunkswarm extension `x_cs_position`: the piece the playhead is in.
    pub position: Option<u32>,
}

/// One offer of an announce, forwarded verbatim.
#[derive(Debug)]
pub struct Offer<'a> {
    /// Names the offer in the answer to it.
    pub offer_id: BinaryId,
    /// The offer, `{"type":"offer","sdp":..}`, as it came.
    pub offer: &'a RawValue,
}

/// An answer to relay to the peer whose offer it answers.
#[derive(Debug)]
pub struct Answer<'a> {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The answering peer.
    pub peer_id: BinaryId,
    /// The offerer, to relay the answer to.
    pub to_peer_id: BinaryId,
    /// The offer answered.
    pub offer_id: BinaryId,
    /// The answer, `{"type":"answer","sdp":..}`, as it came.
    pub answer: &'a RawValue,
}

/// Pieces a peer gained since its last report.
#[derive(Debug)]
pub struct Have {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The reporting peer.
    pub peer_id: BinaryId,
    /// Piece indices (at most 4,096).
    pub pieces: Vec<u32>,
}

/// What kind of message a refusal answers, for its `action` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `announce` (also for unknown actions, as WebTorrent's tracker does).
    Announce,
    /// `scrape`.
    Scrape,
    /// `x_cs_have`.
    Have,
}

impl Action {
    /// The action's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Announce => "announce",
            Self::Scrape => "scrape",
            Self::Have => "x_cs_have",
        }
    }
}

/// Why a message was refused; the text is the `failure reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not JSON, truncated, or not an object.
    #[error("invalid JSON")]
    Json,
    /// A binary WebSocket message.
    #[error("binary messages are not supported")]
    Binary,
    /// `action` is missing or unknown.
    #[error("invalid action")]
    Action,
    /// `info_hash` is not a 20-char binary string.
    #[error("invalid info_hash")]
    InfoHash,
    /// `peer_id` is not a 20-char binary string.
    #[error("invalid peer_id")]
    PeerId,
    /// An answer without a valid `to_peer_id`.
    #[error("invalid `to_peer_id` (required with `answer`)")]
    ToPeerId,
    /// An answer without a valid `offer_id`.
    #[error("invalid offer_id")]
    OfferId,
    /// `offers` is not a list of `{offer_id, offer}` objects.
    #[error("invalid offers")]
    Offers,
    /// `answer` is not an object.
    #[error("invalid answer")]
    Answer,
    /// `event` is not one of the known events.
    #[error("invalid event")]
    Event,
    /// `x_cs_bitfield` is not hex, or `x_cs_pieces` is not a count.
    #[error("invalid x_cs_bitfield")]
    Bitfield,
    /// `x_cs_position` is not a piece index.
    #[error("invalid x_cs_position")]
    Position,
    /// `pieces` of `x_cs_have` is not a list of piece indices.
    #[error("invalid pieces")]
    Pieces,
}

/// A refused message: the error plus what the refusal echoes.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    /// What was wrong.
    pub error: MessageError,
    /// The `action` of the refused message.
    pub action: Action,
    /// The message's `info_hash`, when it had a valid one.
    pub info_hash: Option<InfoHash>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    info_hash: Option<&'a RawValue>,
    #[serde(borrow, default)]
    peer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    to_peer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    left: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offers: Option<&'a RawValue>,
    #[serde(borrow, default)]
    answer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    x_cs_bitfield: Option<&'a RawValue>,
    #[serde(borrow, default)]
    x_cs_pieces: Option<&'a RawValue>,
    #[serde(borrow, default)]
    x_cs_position: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pieces: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireOffer<'a> {
    #[serde(borrow)]
    offer_id: &'a RawValue,
    #[serde(borrow)]
    offer: &'a RawValue,
}

/// Parses one text message from a client.
pub fn parse(text: &str) -> Result<Request<'_>, Refusal> {
    let refuse = |error, action, info_hash| Refusal {
        error,
        action,
        info_hash,
    };
    let fields: Fields<'_> = serde_json::from_str(text)
        .map_err(|_| refuse(MessageError::Json, Action::Announce, None))?;
    let action = match fields.action.as_deref() {
        Some("announce") => Action::Announce,
        Some("scrape") => Action::Scrape,
        Some("x_cs_have") => Action::Have,
        // Early WebTorrent clients sent answers without an action.
        None if fields.answer.is_some() => Action::Announce,
        _ => {
            let info_hash = fields.info_hash.and_then(info_hash_of);
            return Err(refuse(MessageError::Action, Action::Announce, info_hash));
        }
    };
    if action == Action::Scrape {
        return parse_scrape(fields.info_hash)
            .map(Request::Scrape)
            .map_err(|e| refuse(e, action, None));
    }
    let info_hash = fields.info_hash.and_then(info_hash_of).ok_or(refuse(
        MessageError::InfoHash,
        action,
        None,
    ))?;
    let fail = |error| refuse(error, action, Some(info_hash));
    let peer_id = fields
        .peer_id
        .and_then(id_of)
        .ok_or(fail(MessageError::PeerId))?;

    if action == Action::Have {
        let pieces = fields
            .pieces
            .and_then(|raw| serde_json::from_str::<Vec<u32>>(raw.get()).ok())
            .filter(|p| p.len() <= MAX_HAVE_PIECES)
            .ok_or(fail(MessageError::Pieces))?;
        return Ok(Request::Have(Have {
            info_hash,
            peer_id,
            pieces,
        }));
    }

    if let Some(answer) = fields.answer.filter(|raw| !is_null(raw)) {
        if !is_object(answer) {
            return Err(fail(MessageError::Answer));
        }
        let to_peer_id = fields
            .to_peer_id
            .and_then(id_of)
            .ok_or(fail(MessageError::ToPeerId))?;
        let offer_id = fields
            .offer_id
            .and_then(id_of)
            .ok_or(fail(MessageError::OfferId))?;
        return Ok(Request::Answer(Answer {
            info_hash,
            peer_id,
            to_peer_id,
            offer_id,
            answer,
        }));
    }

    let event = parse_event(fields.event).ok_or(fail(MessageError::Event))?;
    let offers = parse_offers(fields.offers).ok_or(fail(MessageError::Offers))?;
    let bitfield = match fields.x_cs_bitfield {
        None => None,
        Some(raw) => {
            let bytes = serde_json::from_str::<Cow<'_, str>>(raw.get())
                .ok()
                .and_then(|hex_text| hex::decode(hex_text.as_bytes()).ok())
                .ok_or(fail(MessageError::Bitfield))?;
            let pieces = match fields.x_cs_pieces {
                None => None,
                Some(raw) => Some(
                    serde_json::from_str::<u32>(raw.get())
                        .map_err(|_| fail(MessageError::Bitfield))?,
                ),
            };
            Some((bytes, pieces))
        }
    };
    let position = match fields.x_cs_position.filter(|raw| !is_null(raw)) {
        None => None,
        Some(raw) => {
            Some(serde_json::from_str::<u32>(raw.get()).map_err(|_| fail(MessageError::Position))?)
        }
    };
    Ok(Request::Announce(Announce {
        info_hash,
        peer_id,
        event,
        complete: left_is_zero(fields.left),
        offers,
        bitfield,
        position,
    }))
}

fn binary_of(raw: &RawValue) -> Option<[u8; 20]> {
    decode_json_binary(raw.get())
}

fn info_hash_of(raw: &RawValue) -> Option<InfoHash> {
    binary_of(raw).map(InfoHash::new)
}

fn id_of(raw: &RawValue) -> Option<BinaryId> {
    binary_of(raw).map(BinaryId)
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

fn parse_scrape(raw: Option<&RawValue>) -> Result<Vec<InfoHash>, MessageError> {
    let Some(raw) = raw.filter(|raw| !is_null(raw)) else {
        return Ok(Vec::new());
    };
    if let Some(one) = info_hash_of(raw) {
        return Ok(vec![one]);
    }
    let list: Vec<Cow<'_, str>> =
        serde_json::from_str(raw.get()).map_err(|_| MessageError::InfoHash)?;
    list.iter()
        .map(|text| {
            decode_binary(text)
                .map(InfoHash::new)
                .ok_or(MessageError::InfoHash)
        })
        .collect()
}

/// `Some(None)` for a periodic re-announce; `None` for an unknown event.
fn parse_event(raw: Option<&RawValue>) -> Option<Option<AnnounceEvent>> {
    let Some(raw) = raw.filter(|raw| !is_null(raw)) else {
        return Some(None);
    };
    let text: Cow<'_, str> = serde_json::from_str(raw.get()).ok()?;
    match &*text {
        "" | "update" => Some(None),
        "started" => Some(Some(AnnounceEvent::Started)),
        "stopped" => Some(Some(AnnounceEvent::Stopped)),
        "completed" => Some(Some(AnnounceEvent::Completed)),
        _ => None,
    }
}

fn parse_offers(raw: Option<&RawValue>) -> Option<Vec<Offer<'_>>> {
    let Some(raw) = raw.filter(|raw| !is_null(raw)) else {
        return Some(Vec::new());
    };
    serde_json::from_str::<Offers<'_>>(raw.get())
        .ok()
        .map(|offers| offers.0)
}

/// A list of offers, read straight into [`Offer`]s in one vector sized for
/// the usual ten (a list of `WireOffer`s grown one by one, then turned into
/// offers, reallocated four times per announce).
struct Offers<'a>(Vec<Offer<'a>>);

impl<'de> Deserialize<'de> for Offers<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Offers<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of offers")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut offers = Vec::new();
                while let Some(wire) = seq.next_element::<WireOffer<'de>>()? {
                    let offer_id = id_of(wire.offer_id)
                        .ok_or_else(|| serde::de::Error::custom("invalid offer_id"))?;
                    if !is_object(wire.offer) {
                        return Err(serde::de::Error::custom("offer is not an object"));
                    }
                    if offers.is_empty() {
                        offers.reserve(seq.size_hint().unwrap_or(10).min(64));
                    }
                    offers.push(Offer {
                        offer_id,
                        offer: wire.offer,
                    });
                }
                Ok(Offers(offers))
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

/// `left` as WebTorrent's tracker reads it: a number or numeric string;
/// anything else means "unknown", which is not zero.
fn left_is_zero(raw: Option<&RawValue>) -> bool {
    let Some(raw) = raw else { return false };
    let text = raw.get();
    let number = match serde_json::from_str::<Cow<'_, str>>(text) {
        Ok(s) => s.trim().parse::<f64>().ok(),
        Err(_) => text.parse::<f64>().ok(),
    };
    number == Some(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(byte: u8) -> String {
        char::from(byte).to_string().repeat(20)
    }

    #[test]
    fn parses_an_announce_with_offers() {
        let text = serde_json::json!({
            "action": "announce", "info_hash": bin(0xab), "peer_id": bin(1),
            "numwant": 2, "left": 0, "event": "started",
            "offers": [{"offer_id": bin(2), "offer": {"type": "offer", "sdp": "v=0"}}],
            "unknown_field": [1, 2, 3],
        })
        .to_string();
        let Ok(Request::Announce(a)) = parse(&text) else {
            panic!("not an announce")
        };
        assert_eq!(a.info_hash, InfoHash::new([0xab; 20]));
        assert_eq!(a.peer_id, BinaryId([1; 20]));
        assert_eq!(a.event, Some(AnnounceEvent::Started));
        assert!(a.complete);
        assert_eq!(a.offers.len(), 1);
        let offer: serde_json::Value = serde_json::from_str(a.offers[0].offer.get()).unwrap();
        assert_eq!(offer, serde_json::json!({"type": "offer", "sdp": "v=0"}));
    }

    #[test]
    fn parses_an_answer_even_without_action() {
        let text = serde_json::json!({
            "info_hash": bin(3), "peer_id": bin(4), "to_peer_id": bin(5),
            "offer_id": bin(6), "answer": {"type": "answer", "sdp": "x"},
        })
        .to_string();
        let Ok(Request::Answer(a)) = parse(&text) else {
            panic!("not an answer")
        };
        assert_eq!(a.to_peer_id, BinaryId([5; 20]));
        assert_eq!(a.offer_id, BinaryId([6; 20]));
    }

    #[test]
    fn refusals_echo_the_info_hash() {
        let text = serde_json::json!({"action": "announce", "info_hash": bin(7), "peer_id": "x"})
            .to_string();
        let refusal = parse(&text).unwrap_err();
        assert_eq!(refusal.error, MessageError::PeerId);
        assert_eq!(refusal.info_hash, Some(InfoHash::new([7; 20])));
    }

    #[test]
    fn bad_input_is_refused_not_panicked_on() {
        for text in [
            "",
            "{",
            "nul",
            "[]",
            "42",
            "\"announce\"",
            "{\"action\":1}",
            "{\"action\":\"announce\"}",
            "{\"action\":\"bogus\"}",
            "{\"action\":\"announce\",\"info_hash\":\"\\ud800\"}",
            "{\"action\":\"scrape\",\"info_hash\":[1]}",
        ] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn the_playback_position_is_a_piece_index() {
        let with = |position: serde_json::Value| {
            serde_json::json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2),
                               "x_cs_position": position})
            .to_string()
        };
        let position = |text: &str| match parse(text) {
            Ok(Request::Announce(a)) => Ok(a.position),
            Ok(_) => panic!("not an announce"),
            Err(refusal) => Err(refusal.error),
        };
        assert_eq!(position(&with(serde_json::json!(17))), Ok(Some(17)));
        assert_eq!(position(&with(serde_json::Value::Null)), Ok(None));
        let absent =
            serde_json::json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2)});
        assert_eq!(position(&absent.to_string()), Ok(None));
        for bad in [
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!("3"),
            serde_json::json!(u64::from(u32::MAX) + 1),
        ] {
            assert_eq!(position(&with(bad)), Err(MessageError::Position));
        }
    }

    #[test]
    fn scrape_takes_one_many_or_none() {
        let one = serde_json::json!({"action": "scrape", "info_hash": bin(1)}).to_string();
        let many =
            serde_json::json!({"action": "scrape", "info_hash": [bin(1), bin(2)]}).to_string();
        let none = r#"{"action":"scrape"}"#;
        assert!(matches!(parse(&one), Ok(Request::Scrape(v)) if v.len() == 1));
        assert!(matches!(parse(&many), Ok(Request::Scrape(v)) if v.len() == 2));
        assert!(matches!(parse(none), Ok(Request::Scrape(v)) if v.is_empty()));
    }

    #[test]
    fn left_is_read_like_webtorrent() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        assert!(left_is_zero(Some(&raw("0"))));
        assert!(left_is_zero(Some(&raw("\"0\""))));
        assert!(!left_is_zero(Some(&raw("12"))));
        assert!(!left_is_zero(Some(&raw("null"))));
        assert!(!left_is_zero(None));
    }
}
