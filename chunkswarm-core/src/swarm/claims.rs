//! Origin claims: the BEP 10 extension handshake and `cs_origin` messages
//! (see [`crate::wire::extension`]). The handshake also offers `ut_metadata`
//! (see [`metadata`](super::metadata)).
//!
//! When a swarm starts fetching a piece from the origin it tells every
//! neighbour that speaks `cs_origin`, and they pass the claim on once. A
//! claimed piece is left to its claimant: HTTP takes it for no neighbour
//! here until the claim expires, unless the download has starved for
//! `starving_fallback` and nothing unclaimed is left. Peers that are not
//! connected to each other but share a neighbour thus stop paying the origin
//! for the same piece. A playback rescue waits for a claimant only if it is
//! a neighbour fetching the piece itself, while its fetch is not yet overdue
//! and no neighbour holds the piece, and only as long as a whole rescue lead
//! would remain after the wait (see `Swarm::claimant_delivers`). Claims
//! never delay pieces whose peer attempts ran out. A hostile claimant can
//! postpone a fetch no longer than the starving fallback, and a rescue no
//! longer than one rescue lead.

use std::collections::BTreeMap;

use bytes::Bytes;
use web_time::Instant;

use super::metadata::LOCAL_METADATA_ID;
use super::playhead::LOCAL_PLAYHEAD_ID;
use super::{PeerKey, ProtocolViolation, Swarm};
use crate::layout::PieceIndex;
use crate::wire::Message;
use crate::wire::extension::{
    EXTENSION_HANDSHAKE_ID, ExtensionHandshake, MAX_CLAIM_HOPS, ORIGIN_CLAIM, OriginClaim, PLAYHEAD,
};
use crate::wire::metadata::METADATA_EXTENSION;

/// The extended id our peers send `cs_origin` messages with.
const LOCAL_ORIGIN_CLAIM_ID: u8 = 1;

/// Pieces claimed by someone nearby: when the claim was heard, and until
/// when it holds. A piece is claimed once: an expired entry stays, so claims
/// repeated by a peer that never delivers cannot hold a piece back for
/// longer than one `claim_ttl`. Entries are bounded by the piece count.
#[derive(Debug, Default)]
pub(super) struct Claims {
    heard: BTreeMap<PieceIndex, Claim>,
}

#[derive(Debug, Clone, Copy)]
struct Claim {
    at: Instant,
    until: Instant,
    /// The neighbour that sent it, if it is fetching the piece itself.
    fetcher: Option<PeerKey>,
}

impl Claims {
    pub(super) fn is_claimed(&self, piece: PieceIndex, now: Instant) -> bool {
        self.heard.get(&piece).is_some_and(|c| now < c.until)
    }

    /// The neighbour fetching `piece` itself under a claim in force, and
    /// when we heard it, if there is one.
    pub(super) fn fetching_neighbour(
        &self,
        piece: PieceIndex,
        now: Instant,
    ) -> Option<(PeerKey, Instant)> {
        let claim = self.heard.get(&piece).filter(|c| now < c.until)?;
        Some((claim.fetcher?, claim.at))
    }

    /// Records a claim; returns whether the piece had never been claimed.
    fn insert(&mut self, piece: PieceIndex, claim: Claim) -> bool {
        let fresh = !self.heard.contains_key(&piece);
        self.heard.entry(piece).or_insert(claim);
        fresh
    }

    fn active(&self, now: Instant) -> impl Iterator<Item = PieceIndex> + '_ {
        self.heard
            .iter()
            .filter(move |(_, c)| now < c.until)
            .map(|(piece, _)| *piece)
    }
}

impl Swarm {
    /// Sends our extension handshake to a peer that set the BEP 10 bit.
    pub(super) fn send_extension_handshake(&mut self, now: Instant, key: PeerKey) {
        let mut extensions = BTreeMap::new();
        if !self.config.http.claim_ttl.is_zero() {
            extensions.insert(ORIGIN_CLAIM.to_owned(), LOCAL_ORIGIN_CLAIM_ID);
        }
        extensions.insert(METADATA_EXTENSION.to_owned(), LOCAL_METADATA_ID);
        extensions.insert(PLAYHEAD.to_owned(), LOCAL_PLAYHEAD_ID);
        let handshake = ExtensionHandshake {
            extensions,
            client: Some(concat!("chunkswarm ", env!("CARGO_PKG_VERSION")).to_owned()),
            request_queue: u32::try_from(self.config.max_incoming_requests).ok(),
            metadata_size: Some(self.info.encoded().len() as u64),
        };
        let message = Message::Extended {
            id: EXTENSION_HANDSHAKE_ID,
            payload: handshake.encode(),
        };
        self.send(now, key, &[message]);
    }

    /// An `extended` message arrived.
    pub(super) fn extension_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        id: u8,
        payload: &Bytes,
    ) {
        let result = match id {
            EXTENSION_HANDSHAKE_ID => ExtensionHandshake::decode(payload).map(|handshake| {
                let id = handshake.id_of(ORIGIN_CLAIM);
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                peer.origin_claim_id = id;
                peer.metadata_id = handshake.id_of(METADATA_EXTENSION);
                let first_playhead_id = peer.playhead_id.is_none();
                peer.playhead_id = handshake.id_of(PLAYHEAD);
                // A repeated handshake may change the id, but the claims in
                // force go out once, so repeating it cannot make us talk.
                if let Some(id) = id.filter(|_| !peer.told_claims) {
                    peer.told_claims = true;
                    self.send_active_claims(now, key, id);
                }
                if first_playhead_id {
                    self.send_playhead(now, key);
                }
            }),
            LOCAL_ORIGIN_CLAIM_ID => {
                OriginClaim::decode(payload).map(|claim| self.claim_heard(now, key, claim))
            }
            LOCAL_METADATA_ID => self.metadata_message(now, key, payload),
            LOCAL_PLAYHEAD_ID => self.playhead_heard(now, key, payload),
            // Extensions we did not offer: nothing to do.
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.drop_peer(now, key, ProtocolViolation::from(e).into(), true);
        }
    }

    /// We are fetching `piece` from the origin: tell the neighbours.
    pub(super) fn claim_origin_fetch(&mut self, now: Instant, piece: PieceIndex) {
        let claim = OriginClaim {
            piece: piece.get(),
            hops: MAX_CLAIM_HOPS,
        };
        self.broadcast_claim(now, claim, None);
    }

    /// Brings a new neighbour up to date: our own origin fetches, passed on
    /// once more as fresh claims are, and the claims we heard, not passed on.
    fn send_active_claims(&mut self, now: Instant, key: PeerKey, id: u8) {
        if self.config.http.claim_ttl.is_zero() {
            return;
        }
        let own = self
            .http
            .in_flight_pieces()
            .map(|piece| (piece, MAX_CLAIM_HOPS));
        let heard = self.claims.active(now).map(|piece| (piece, 0));
        let messages: Vec<Message> = own
            .chain(heard)
            .map(|(piece, hops)| Message::Extended {
                id,
                payload: OriginClaim {
                    piece: piece.get(),
                    hops,
                }
                .encode(),
            })
            .collect();
        self.send(now, key, &messages);
    }

    fn claim_heard(&mut self, now: Instant, from: PeerKey, claim: OriginClaim) {
        let ttl = self.config.http.claim_ttl;
        if ttl.is_zero() {
            return;
        }
        let Some(piece) = self.layout.piece(claim.piece) else {
            let reason = ProtocolViolation::ClaimOutOfRange { piece: claim.piece }.into();
            return self.drop_peer(now, from, reason, true);
        };
        if self.have.contains(piece) {
            return;
        }
        // A claim at full hops comes from the fetcher itself.
        let heard = Claim {
            at: now,
            until: now + ttl,
            fetcher: (claim.hops == MAX_CLAIM_HOPS).then_some(from),
        };
        // Passed on only the first time, so a claim crosses each connection
        // once.
        if self.claims.insert(piece, heard) && claim.hops > 0 {
            let onward = OriginClaim {
                hops: claim.hops - 1,
                ..claim
            };
            self.broadcast_claim(now, onward, Some(from));
        }
    }

    fn broadcast_claim(&mut self, now: Instant, claim: OriginClaim, except: Option<PeerKey>) {
        if self.config.http.claim_ttl.is_zero() {
            return;
        }
        let payload = claim.encode();
        let targets: Vec<(PeerKey, u8)> = self
            .peers
            .iter()
            .filter(|(key, peer)| Some(**key) != except && peer.is_active())
            .filter_map(|(key, peer)| Some((*key, peer.origin_claim_id?)))
            .collect();
        for (key, id) in targets {
            let message = Message::Extended {
                id,
                payload: payload.clone(),
            };
            self.send(now, key, &[message]);
        }
    }
}
