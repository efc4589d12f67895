//! The driver's side of the WebTorrent tracker protocol: the messages it
//! sends, with their JSON form, and the tracker's messages it reads. The
//! tracker parses what [`SignalOut::to_json`] writes with
//! [`tracker_protocol::parse`](crate::tracker_protocol::parse), and its
//! tests hold the two together.
//!
//! Info hashes, peer ids and offer ids travel as 20-character JSON strings
//! whose characters (U+0000 to U+00FF) are the bytes, as WebTorrent writes
//! them. Offers and answers are `{"type":"offer"|"answer","sdp":..}`.
//! chunkswarm's extensions (`x_cs_bitfield`, `x_cs_pieces`, `x_cs_position`,
//! `x_cs_have`; `x_cs_ice` in announce replies) are extra fields and actions
//! a WebTorrent tracker ignores.
//!
//! [`SignalIn::parse`] never panics: anything it does not understand is an
//! error, which the driver logs and skips.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::ice::IceGrant;
use super::io::TrackerError;
use crate::metainfo::InfoHash;
use crate::piece_map::Bitfield;
use crate::swarm::SwarmFacts;
pub use crate::tracker_protocol::AnnounceEvent;
use crate::tracker_protocol::reply::{self, Reply, ReplyError};

/// A 20-byte peer id or offer id.
pub type Id20 = [u8; 20];

/// An `announce`: joins or refreshes a swarm, carrying offers for other peers.
#[derive(Debug, Clone, PartialEq)]
pub struct Announce {
    /// The swarm.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: Id20,
    /// How many peers we want offers sent to.
    pub numwant: u32,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes still missing (0 makes a seeder).
    pub left: u64,
    /// The event, if any.
    pub event: Option<AnnounceEvent>,
    /// Offers: `(offer_id, offer SDP)`.
    pub offers: Vec<(Id20, String)>,
    /// The pieces we hold (the `x_cs_bitfield` extension).
    pub bitfield: Option<Bitfield>,
    /// The piece our playhead is in, while playing (the `x_cs_position`
    /// extension): the tracker introduces us first to holders of the pieces
    /// we lack from there on.
    pub position: Option<u32>,
}

/// A message to the tracker.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalOut {
    /// Join or refresh a swarm.
    Announce(Announce),
    /// The answer to an offer that `to_peer_id` made.
    Answer {
        /// The swarm.
        info_hash: InfoHash,
        /// Our peer id.
        peer_id: Id20,
        /// The offerer.
        to_peer_id: Id20,
        /// The offer answered.
        offer_id: Id20,
        /// Our answer SDP.
        sdp: String,
    },
    /// Pieces gained since the last report (the `x_cs_have` extension).
    Have {
        /// The swarm.
        info_hash: InfoHash,
        /// Our peer id.
        peer_id: Id20,
        /// Piece indices.
        pieces: Vec<u32>,
    },
}

/// A message from the tracker.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalIn {
    /// Another peer's offer, to answer.
    Offer {
        /// The swarm.
        info_hash: InfoHash,
        /// The offerer.
        from: Id20,
        /// Names the offer in our answer.
        offer_id: Id20,
        /// The offer SDP.
        sdp: String,
    },
    /// The answer to one of our offers.
    Answer {
        /// The swarm.
        info_hash: InfoHash,
        /// The answerer.
        from: Id20,
        /// Our offer it answers.
        offer_id: Id20,
        /// The answer SDP.
        sdp: String,
    },
    /// The reply to an announce.
    Announced {
        /// The swarm.
        info_hash: InfoHash,
        /// When to announce again.
        interval: Option<Duration>,
        /// Seeders.
        complete: Option<u64>,
        /// Leechers.
        incomplete: Option<u64>,
        /// STUN/TURN servers with fresh credentials (the `x_cs_ice`
        /// extension), if the tracker issues them.
        ice: Option<IceGrant>,
        /// What the tracker knows of the whole swarm (the `x_cs_swarm`
        /// extension), for the engine ([`Swarm::handle_swarm_facts`]).
        ///
        /// [`Swarm::handle_swarm_facts`]: crate::swarm::Swarm::handle_swarm_facts
        facts: Option<SwarmFacts>,
    },
    /// A refusal (`failure reason`) or a `warning message`.
    Failure {
        /// The swarm, if the tracker named it.
        info_hash: Option<InfoHash>,
        /// The tracker's text.
        reason: String,
    },
    /// Not a tracker message: the adapter reports that it connected again
    /// after losing the connection (or after [`SignalIn::Disconnected`]).
    /// The tracker forgot us with the old socket, so the driver announces
    /// every torrent anew.
    Reconnected,
    /// Not a tracker message: the adapter lost the tracker (or could not
    /// reach it) and is retrying. The driver makes no offers meanwhile,
    /// since nobody could receive them, until [`SignalIn::Reconnected`],
    /// and reports the error to subscribers.
    Disconnected(TrackerError),
}

/// Why a tracker message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalParseError {
    /// Not a tracker message the protocol's reader understands.
    #[error(transparent)]
    Reply(#[from] ReplyError),
    /// A message the driver has no use for (a scrape answer, an unknown
    /// action).
    #[error("ignored message")]
    Ignored,
}

fn binary(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

impl SignalOut {
    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        match self {
            Self::Announce(a) => {
                let mut object = Map::new();
                object.insert("action".into(), json!("announce"));
                object.insert("info_hash".into(), json!(binary(a.info_hash.as_bytes())));
                object.insert("peer_id".into(), json!(binary(&a.peer_id)));
                object.insert("numwant".into(), json!(a.numwant));
                object.insert("uploaded".into(), json!(a.uploaded));
                object.insert("downloaded".into(), json!(a.downloaded));
                object.insert("left".into(), json!(a.left));
                if let Some(event) = a.event {
                    object.insert("event".into(), json!(event.as_str()));
                }
                let offers: Vec<Value> = a
                    .offers
                    .iter()
                    .map(|(id, sdp)| {
                        json!({"offer_id": binary(id), "offer": {"type": "offer", "sdp": sdp}})
                    })
                    .collect();
                object.insert("offers".into(), Value::Array(offers));
                if let Some(bits) = &a.bitfield {
                    object.insert("x_cs_bitfield".into(), json!(hex::encode(bits.to_bytes())));
                    object.insert("x_cs_pieces".into(), json!(bits.len()));
                }
                if let Some(position) = a.position {
                    object.insert("x_cs_position".into(), json!(position));
                }
                Value::Object(object).to_string()
            }
            Self::Answer {
                info_hash,
                peer_id,
                to_peer_id,
                offer_id,
                sdp,
            } => json!({
                "action": "announce",
                "info_hash": binary(info_hash.as_bytes()),
                "peer_id": binary(peer_id),
                "to_peer_id": binary(to_peer_id),
                "offer_id": binary(offer_id),
                "answer": {"type": "answer", "sdp": sdp},
            })
            .to_string(),
            Self::Have {
                info_hash,
                peer_id,
                pieces,
            } => json!({
                "action": "x_cs_have",
                "info_hash": binary(info_hash.as_bytes()),
                "peer_id": binary(peer_id),
                "pieces": pieces,
            })
            .to_string(),
        }
    }
}

impl SignalIn {
    /// Reads one text frame from the tracker with the protocol's reader,
    /// [`tracker_protocol::reply::parse`](crate::tracker_protocol::reply::parse).
    /// A `warning message` in an announce answer is reported as a
    /// [`SignalIn::Failure`]; scrape answers and unknown actions are
    /// [`SignalParseError::Ignored`].
    pub fn parse(text: &str) -> Result<Self, SignalParseError> {
        let reply = reply::parse(text).map_err(|e| match e {
            ReplyError::Action => SignalParseError::Ignored,
            e => SignalParseError::Reply(e),
        })?;
        Ok(match reply {
            Reply::Failure(failure) => Self::Failure {
                info_hash: failure.info_hash,
                reason: failure.reason.into_owned(),
            },
            Reply::Offer(offer) => Self::Offer {
                info_hash: offer.info_hash,
                from: offer.from.0,
                offer_id: offer.offer_id.0,
                sdp: offer.sdp.into_owned(),
            },
            Reply::Answer(answer) => Self::Answer {
                info_hash: answer.info_hash,
                from: answer.from.0,
                offer_id: answer.offer_id.0,
                sdp: answer.sdp.into_owned(),
            },
            Reply::Announced(announced) => match announced.warning {
                Some(warning) => Self::Failure {
                    info_hash: Some(announced.info_hash),
                    reason: warning.into_owned(),
                },
                None => Self::Announced {
                    info_hash: announced.info_hash,
                    interval: announced.interval.map(Duration::from_secs),
                    complete: announced.complete,
                    incomplete: announced.incomplete,
                    ice: announced.ice.and_then(IceGrant::parse),
                    facts: announced.facts,
                },
            },
            Reply::Scrape(_) => return Err(SignalParseError::Ignored),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::MAX_FACT_PIECES;
    use crate::tracker_protocol::ids::decode_binary;

    fn ids() -> (InfoHash, Id20, Id20) {
        let mut peer = [0u8; 20];
        for (i, b) in peer.iter_mut().enumerate() {
            *b = (i as u8) * 13; // covers control chars, '"', '\\' and high bytes
        }
        (InfoHash::new([0xfe; 20]), peer, [b'"'; 20])
    }

    #[test]
    fn an_answer_round_trips_through_the_tracker_form() {
        let (info_hash, peer, offer) = ids();
        let out = SignalOut::Answer {
            info_hash,
            peer_id: peer,
            to_peer_id: peer,
            offer_id: offer,
            sdp: "v=0\r\n".into(),
        };
        // The tracker relays it as {"action":"announce","answer",..,"peer_id":<from>}.
        let mut value: Value = serde_json::from_str(&out.to_json()).unwrap();
        value.as_object_mut().unwrap().remove("to_peer_id");
        let parsed = SignalIn::parse(&value.to_string()).unwrap();
        assert_eq!(
            parsed,
            SignalIn::Answer {
                info_hash,
                from: peer,
                offer_id: offer,
                sdp: "v=0\r\n".into()
            }
        );
    }

    #[test]
    fn an_announce_carries_offers_and_the_bitfield() {
        let (info_hash, peer, offer) = ids();
        let bits = Bitfield::from_bytes(&[0x80, 0], 10).unwrap();
        let text = SignalOut::Announce(Announce {
            info_hash,
            peer_id: peer,
            numwant: 2,
            uploaded: 0,
            downloaded: 5,
            left: 7,
            event: Some(AnnounceEvent::Started),
            offers: vec![(offer, "sdp".into())],
            bitfield: Some(bits),
            position: Some(3),
        })
        .to_json();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["event"], "started");
        assert_eq!(value["x_cs_position"], 3);
        assert_eq!(value["offers"][0]["offer"]["type"], "offer");
        assert_eq!(value["x_cs_bitfield"], "8000");
        assert_eq!(value["x_cs_pieces"], 10);
        assert_eq!(
            decode_binary(value["peer_id"].as_str().unwrap()),
            Some(peer)
        );
    }

    #[test]
    fn tracker_replies_parse() {
        let (info_hash, peer, offer) = ids();
        let offered = json!({"action": "announce", "offer": {"type": "offer", "sdp": "x"},
            "offer_id": binary(&offer), "peer_id": binary(&peer),
            "info_hash": binary(info_hash.as_bytes())});
        assert!(matches!(
            SignalIn::parse(&offered.to_string()),
            Ok(SignalIn::Offer { sdp, .. }) if sdp == "x"
        ));
        let reply = json!({"action": "announce", "interval": 120,
            "info_hash": binary(info_hash.as_bytes()), "complete": 1, "incomplete": 0});
        assert!(matches!(
            SignalIn::parse(&reply.to_string()),
            Ok(SignalIn::Announced { interval: Some(d), ice: None, .. }) if d.as_secs() == 120
        ));
        let with_ice = json!({"action": "announce", "interval": 120,
            "info_hash": binary(info_hash.as_bytes()),
            "x_cs_ice": {"iceServers": [{"urls": ["turn:127.0.0.1:3478"],
                "username": "9:p", "credential": "c"}], "ttl": 600, "expires": 9}});
        assert!(matches!(
            SignalIn::parse(&with_ice.to_string()),
            Ok(SignalIn::Announced { ice: Some(grant), .. })
                if grant.servers[0].username == "9:p" && grant.expires == Some(9)
        ));
        let with_facts = json!({"action": "announce", "interval": 120,
            "info_hash": binary(info_hash.as_bytes()),
            "x_cs_swarm": {"peers": 5, "seeders": 0, "first": 3, "holders": [2, 0], "fetch": [4]}});
        let expected = SwarmFacts {
            peers: 5,
            seeders: 0,
            first: 3,
            holders: vec![2, 0],
            fetch: vec![4],
        };
        assert!(matches!(
            SignalIn::parse(&with_facts.to_string()),
            Ok(SignalIn::Announced { facts: Some(facts), .. }) if facts == expected
        ));
        // A malformed summary is ignored, not the reply; long lists are cut.
        let bad = json!({"action": "announce", "info_hash": binary(info_hash.as_bytes()),
            "x_cs_swarm": {"peers": -1, "seeders": 0, "first": 0, "holders": [], "fetch": []}});
        assert!(matches!(
            SignalIn::parse(&bad.to_string()),
            Ok(SignalIn::Announced { facts: None, .. })
        ));
        let long = json!({"action": "announce", "info_hash": binary(info_hash.as_bytes()),
            "x_cs_swarm": {"peers": 1, "seeders": 0, "first": 0,
                "holders": vec![1; 500], "fetch": vec![0; 500]}});
        assert!(matches!(
            SignalIn::parse(&long.to_string()),
            Ok(SignalIn::Announced { facts: Some(facts), .. })
                if facts.holders.len() == MAX_FACT_PIECES && facts.fetch.len() == MAX_FACT_PIECES
        ));
        let failure = json!({"action": "announce", "failure reason": "no"});
        assert!(matches!(
            SignalIn::parse(&failure.to_string()),
            Ok(SignalIn::Failure { reason, .. }) if reason == "no"
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        for text in [
            "",
            "{",
            "[]",
            "{\"action\":\"announce\"}",
            "{\"action\":\"scrape\"}",
        ] {
            assert!(SignalIn::parse(text).is_err(), "{text:?}");
        }
        let bad_offer = json!({"action": "announce", "offer": {}, "offer_id": "short",
            "peer_id": "x", "info_hash": binary(&[1; 20])});
        assert!(SignalIn::parse(&bad_offer.to_string()).is_err());
    }
}
