//! Messages one node sends another through Redis pub/sub: an offer for a
//! peer connected there, or an answer for one.

use chunkswarm_core::metainfo::InfoHash;
use serde::{Deserialize, Serialize};

use super::NodeId;
use crate::signaling::ids::Id20;

/// A signaling message for a peer on another node. The text is the
/// WebSocket message exactly as the peer is to receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Relay {
    /// An offer the sending node's peer made, for `to`.
    Offer {
        /// The node of the offerer, where the answer goes.
        from_node: NodeId,
        /// The peer the offer is for.
        to: Id20,
        /// The offerer.
        from: Id20,
        /// The offer's id, which the answer names.
        offer_id: Id20,
        /// The swarm.
        info_hash: InfoHash,
        /// The message for `to`.
        text: String,
    },
    /// An answer, already checked by the answerer's node against the offer
    /// it delivered, for the offerer `to`.
    Answer {
        /// The offerer.
        to: Id20,
        /// The message for `to`.
        text: String,
    },
}

/// The JSON form on the channel; ids in hex.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Wire {
    Offer {
        from_node: NodeId,
        to: String,
        from: String,
        offer_id: String,
        info_hash: String,
        text: String,
    },
    Answer {
        to: String,
        text: String,
    },
}

fn id(hex_text: &str) -> Option<Id20> {
    let mut bytes = [0u8; 20];
    hex::decode_to_slice(hex_text, &mut bytes).ok()?;
    Some(Id20(bytes))
}

impl Relay {
    /// The message as published.
    pub(crate) fn encode(&self) -> String {
        let wire = match self {
            Self::Offer {
                from_node,
                to,
                from,
                offer_id,
                info_hash,
                text,
            } => Wire::Offer {
                from_node: *from_node,
                to: to.to_hex(),
                from: from.to_hex(),
                offer_id: offer_id.to_hex(),
                info_hash: info_hash.to_hex(),
                text: text.clone(),
            },
            Self::Answer { to, text } => Wire::Answer {
                to: to.to_hex(),
                text: text.clone(),
            },
        };
        // A struct of strings and integers always serializes.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Reads a published message; `None` if it is not one.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        Some(match serde_json::from_str::<Wire>(text).ok()? {
            Wire::Offer {
                from_node,
                to,
                from,
                offer_id,
                info_hash,
                text,
            } => Self::Offer {
                from_node,
                to: id(&to)?,
                from: id(&from)?,
                offer_id: id(&offer_id)?,
                info_hash: InfoHash::from_hex(&info_hash)?,
                text,
            },
            Wire::Answer { to, text } => Self::Answer { to: id(&to)?, text },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_round_trip_and_garbage_is_refused() {
        let offer = Relay::Offer {
            from_node: 7,
            to: Id20([1; 20]),
            from: Id20([2; 20]),
            offer_id: Id20([0xff; 20]),
            info_hash: InfoHash::new([3; 20]),
            text: "{\"x\":\"\u{0}\"}".into(),
        };
        assert_eq!(Relay::decode(&offer.encode()), Some(offer));
        let answer = Relay::Answer {
            to: Id20([9; 20]),
            text: "a".into(),
        };
        assert_eq!(Relay::decode(&answer.encode()), Some(answer));
        assert_eq!(
            Relay::decode("{\"kind\":\"answer\",\"to\":\"zz\",\"text\":\"\"}"),
            None
        );
        assert_eq!(Relay::decode("nope"), None);
    }
}
