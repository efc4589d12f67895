//! The live state of the tracker: connections, who owns which `peer_id`,
//! the swarms, the offers awaiting answers, and which peer holds which piece.
//!
//! One [`Registry`] sits behind one mutex; every operation is short and never
//! waits: messages to other connections go into their bounded queues with
//! `try_send`, and a full queue loses the message rather than slowing anyone.

mod candidate;
mod pending;
mod pieces;
mod snug;
mod swarm;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::swarm::SwarmFacts;

use crate::cluster::{MemberReport, NodeId, RemoteMember, Snapshot};
use crate::config::Limits;
use crate::signaling::ids::{OfferId, PeerId};
use crate::signaling::message::{Announce, Answer, Event, Have};
use crate::signaling::outbox::Outbox;
use crate::signaling::reply::{self, SwarmCounts};

use candidate::Candidate;
use pending::PendingOffers;
pub(crate) use pieces::{PieceReport, SwarmSummary, add_remote};
use swarm::{Swarm, SwarmPeer};

/// Identifies one WebSocket connection for its lifetime.
pub(crate) type ConnId = u64;

/// Why the registry refused a request. The text is the `failure reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegistryError {
    /// Another connection announced this `peer_id` first.
    #[error("peer_id is in use by another connection")]
    PeerIdTaken,
    /// The connection announced too many distinct peer ids.
    #[error("too many peer ids on this connection")]
    TooManyPeerIds,
    /// The connection is in too many swarms.
    #[error("too many swarms on this connection")]
    TooManySwarms,
    /// The tracker holds as many swarms as it may.
    #[error("tracker is full")]
    TrackerFull,
    /// No forwarded offer matches the answer (never sent, already answered,
    /// or sent to someone else).
    #[error("no outstanding offer for this answer")]
    UnsolicitedAnswer,
    /// The offer was forwarded too long ago.
    #[error("offer expired")]
    ExpiredAnswer,
    /// The peer the message is for is not connected.
    #[error("no peer with that `to_peer_id`")]
    UnknownPeer,
    /// The peer the message is for does not read its messages.
    #[error("peer is not reading")]
    SlowPeer,
    /// A piece report for a swarm the peer is not in.
    #[error("peer is not in this swarm")]
    NotInSwarm,
    /// A bitfield or `x_cs_have` whose piece count is unknown or wrong.
    #[error("invalid piece report")]
    BadPieces,
    /// The connection's peers hold as many bitfield bytes as it may.
    #[error("too many piece reports on this connection")]
    PieceBudget,
}

impl RegistryError {
    /// Whether the refusal counts against the connection's abuse budget.
    ///
    /// Only what a correct client never sends does: a `peer_id` another
    /// connection owns, and a malformed piece report. The rest are facts of
    /// a churning swarm or of a limit (an answer to a peer that left, to an
    /// offer that expired or was forgotten, a peer that stopped reading or
    /// was dropped for silence, a limit reached): a client meets them in
    /// the normal course and only gets its reply.
    pub(crate) fn is_abuse(self) -> bool {
        match self {
            Self::PeerIdTaken | Self::BadPieces => true,
            Self::TooManyPeerIds
            | Self::TooManySwarms
            | Self::TrackerFull
            | Self::UnsolicitedAnswer
            | Self::ExpiredAnswer
            | Self::UnknownPeer
            | Self::SlowPeer
            | Self::NotInSwarm
            | Self::PieceBudget => false,
        }
    }
}

#[derive(Debug)]
struct Conn {
    outbox: Outbox,
    peer_ids: Vec<PeerId>,
    memberships: Vec<(InfoHash, PeerId)>,
    /// Offers this connection made that were forwarded, oldest first.
    pending: PendingOffers,
    /// Offers from peers on other nodes delivered to this connection, oldest first.
    remote_pending: VecDeque<RemotePending>,
    /// Bytes of the bitfields its peers reported, against
    /// [`Limits::max_bitfield_bytes_per_connection`].
    bitfield_bytes: usize,
}

#[derive(Debug)]
struct Pending {
    offer_id: OfferId,
    from: PeerId,
    info_hash: InfoHash,
    to: PeerId,
    to_conn: ConnId,
    expires: Instant,
}

/// An offer from another node's peer, delivered to a local connection.
#[derive(Debug)]
struct RemotePending {
    offer_id: OfferId,
    from: PeerId,
    from_node: NodeId,
    info_hash: InfoHash,
    expires: Instant,
}

/// Where an accepted answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerRoute {
    /// Queued to the offerer's local connection.
    Delivered,
    /// The offerer is on this node of the cluster: relay it there.
    Remote(NodeId),
}

/// What an announce did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announced {
    /// The swarm's counts after it.
    pub(crate) counts: SwarmCounts,
    /// Offers delivered to other peers.
    pub(crate) forwarded: usize,
    /// Offers lost to full queues.
    pub(crate) dropped: usize,
    /// A problem with the piece report, which does not fail the announce.
    pub(crate) warning: Option<RegistryError>,
    /// Offers chosen for members on other nodes: (index in the announce's
    /// offers, index in the remote members given), for the caller to relay.
    pub(crate) remote: Vec<(usize, usize)>,
    /// The swarm facts for the announcing peer (`x_cs_swarm`), if it
    /// reported its pieces.
    pub(crate) facts: Option<SwarmFacts>,
}

/// A connection's peer ids and memberships, when it closes.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    pub(crate) peer_ids: Vec<PeerId>,
    pub(crate) memberships: Vec<(InfoHash, PeerId)>,
}

/// An offer relayed from another node, for [`Registry::deliver_offer`].
#[derive(Debug)]
pub(crate) struct RelayedOffer<'a> {
    pub(crate) from_node: NodeId,
    pub(crate) to: PeerId,
    pub(crate) from: PeerId,
    pub(crate) offer_id: OfferId,
    pub(crate) info_hash: InfoHash,
    pub(crate) text: &'a str,
}

/// Connections, ownership, swarms and pending offers.
#[derive(Debug)]
pub(crate) struct Registry {
    /// Boxed: the map keeps room for up to twice as many entries as it
    /// holds, each the size of its value.
    conns: HashMap<ConnId, Box<Conn>>,
    owners: HashMap<PeerId, ConnId>,
    swarms: HashMap<InfoHash, Swarm>,
    limits: Limits,
    rng: fastrand::Rng,
    /// Members whose pieces grew by `x_cs_have` since the cluster last took
    /// them; `None` when there is no cluster to tell.
    changed: Option<HashSet<(InfoHash, PeerId)>>,
}

impl Registry {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            conns: HashMap::new(),
            owners: HashMap::new(),
            swarms: HashMap::new(),
            limits,
            rng: fastrand::Rng::new(),
            changed: None,
        }
    }

    /// Starts recording piece reports that change between announces, for a
    /// cluster to share ([`Registry::take_changed`]).
    pub(crate) fn record_changes(&mut self) {
        self.changed.get_or_insert_with(HashSet::new);
    }

    /// The members whose pieces grew since the last call, with their reports.
    pub(crate) fn take_changed(&mut self) -> Vec<(InfoHash, PeerId, MemberReport)> {
        let Some(changed) = self.changed.as_mut() else {
            return Vec::new();
        };
        let changed = std::mem::take(changed);
        changed
            .into_iter()
            .filter_map(|(info_hash, peer_id)| {
                Some((info_hash, peer_id, self.report(&info_hash, &peer_id)?))
            })
            .collect()
    }

    /// Adds a connection and the queue that reaches it.
    pub(crate) fn connect(&mut self, conn: ConnId, outbox: Outbox) {
        self.conns.insert(
            conn,
            Box::new(Conn {
                outbox,
                peer_ids: Vec::new(),
                memberships: Vec::new(),
                pending: PendingOffers::default(),
                remote_pending: VecDeque::new(),
                bitfield_bytes: 0,
            }),
        );
    }

    /// Has every connection close for the tracker's shutdown.
    pub(crate) fn shut_down_connections(&self) {
        for state in self.conns.values() {
            state.outbox.shut_down();
        }
    }

    /// Removes a connection: its peers leave their swarms, its peer ids are
    /// free again, its pending offers are forgotten. Returns the peer ids and
    /// memberships it had, for the cluster to forget.
    pub(crate) fn disconnect(&mut self, conn: ConnId) -> Membership {
        let Some(state) = self.conns.remove(&conn) else {
            return Membership::default();
        };
        for peer_id in &state.peer_ids {
            self.owners.remove(peer_id);
        }
        for (info_hash, peer_id) in &state.memberships {
            self.leave_swarm(info_hash, peer_id);
        }
        Membership {
            peer_ids: state.peer_ids,
            memberships: state.memberships,
        }
    }

    /// Whether `conn` already announced with `peer_id`.
    pub(crate) fn owns(&self, conn: ConnId, peer_id: &PeerId) -> bool {
        self.owners.get(peer_id) == Some(&conn)
    }

    /// Every local peer id and membership (with its seeding state), for a
    /// cluster that (re)connects.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            peer_ids: self.owners.keys().copied().collect(),
            members: Vec::new(),
        };
        for (info_hash, swarm) in &self.swarms {
            for peer in swarm.peers() {
                let report = swarm.report(&peer.peer_id).unwrap_or_default();
                snapshot.members.push((*info_hash, peer.peer_id, report));
            }
        }
        snapshot
    }

    /// What a member reported, as the cluster shares it.
    pub(crate) fn report(&self, info_hash: &InfoHash, peer_id: &PeerId) -> Option<MemberReport> {
        self.swarms.get(info_hash)?.report(peer_id)
    }

    /// Checks that `peer_id` belongs to `conn`, claiming it if it is free.
    fn claim(&mut self, conn: ConnId, peer_id: PeerId) -> Result<&mut Conn, RegistryError> {
        let max_ids = self.limits.max_peer_ids_per_connection;
        let state = self
            .conns
            .get_mut(&conn)
            .ok_or(RegistryError::UnknownPeer)?;
        match self.owners.get(&peer_id) {
            Some(&owner) if owner == conn => Ok(state),
            Some(_) => Err(RegistryError::PeerIdTaken),
            None if state.peer_ids.len() >= max_ids => Err(RegistryError::TooManyPeerIds),
            None => {
                self.owners.insert(peer_id, conn);
                snug::push(&mut state.peer_ids, peer_id);
                Ok(state)
            }
        }
    }

    fn leave_swarm(&mut self, info_hash: &InfoHash, peer_id: &PeerId) {
        if let Some(swarm) = self.swarms.get_mut(info_hash) {
            if let Some(peer) = swarm.remove(peer_id) {
                if let Some(state) = self.conns.get_mut(&peer.conn) {
                    state.bitfield_bytes -= peer.bitfield_bytes().min(state.bitfield_bytes);
                }
            }
            if swarm.is_empty() {
                self.swarms.remove(info_hash);
            }
        }
    }

    /// Handles an announce from `conn`: membership, seeding state, piece
    /// report and playback position, and forwarding its offers to the
    /// members the piece map chooses ([`crate::introductions`]).
    /// `library_pieces` is the piece count if the tracker knows the torrent.
    pub(crate) fn announce(
        &mut self,
        conn: ConnId,
        msg: &Announce<'_>,
        library_pieces: Option<u32>,
        remote: &[RemoteMember],
        now: Instant,
    ) -> Result<Announced, RegistryError> {
        let membership = (msg.info_hash, msg.peer_id);
        let memberships = self.claim(conn, msg.peer_id)?.memberships.len();
        // Found in the swarm, not in the connection's list of memberships: a
        // connection may be in thousands of swarms. The peer id is this
        // connection's (claimed above), so its entry is this connection's.
        let is_member = self
            .swarms
            .get(&msg.info_hash)
            .and_then(|swarm| swarm.get(&msg.peer_id))
            .is_some_and(|peer| peer.conn == conn);

        if msg.event == Some(Event::Stopped) {
            if is_member {
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.memberships.retain(|m| *m != membership);
                }
                self.leave_swarm(&msg.info_hash, &msg.peer_id);
            }
            let counts = self
                .swarms
                .get(&msg.info_hash)
                .map(Swarm::counts)
                .unwrap_or_default();
            return Ok(Announced {
                counts,
                forwarded: 0,
                dropped: 0,
                warning: None,
                remote: Vec::new(),
                facts: None,
            });
        }

        if !is_member {
            if memberships >= self.limits.max_swarms_per_connection {
                return Err(RegistryError::TooManySwarms);
            }
            if !self.swarms.contains_key(&msg.info_hash)
                && self.swarms.len() >= self.limits.max_swarms
            {
                return Err(RegistryError::TrackerFull);
            }
            let Some(state) = self.conns.get_mut(&conn) else {
                return Err(RegistryError::UnknownPeer);
            };
            snug::push(&mut state.memberships, membership);
            let outbox = state.outbox.clone();
            let swarm = self.swarms.entry(msg.info_hash).or_default();
            if swarm.piece_count.is_none() {
                swarm.piece_count = library_pieces;
            }
            swarm.insert(SwarmPeer {
                peer_id: msg.peer_id,
                conn,
                outbox,
                complete: false,
                pieces: None,
                position: None,
                last_seen: now,
            });
        }
        let budget = self.bitfield_budget(conn);
        let Some(swarm) = self.swarms.get_mut(&msg.info_hash) else {
            return Err(RegistryError::NotInSwarm);
        };
        let before = swarm.get(&msg.peer_id).map_or(0, SwarmPeer::bitfield_bytes);
        if let Some(peer) = swarm.get_mut(&msg.peer_id) {
            peer.last_seen = now;
            peer.position = msg.position;
        }
        if msg.complete || msg.event == Some(Event::Completed) {
            swarm.set_complete(&msg.peer_id, msg.event == Some(Event::Completed));
        }
        let warning = match &msg.bitfield {
            Some((bytes, _)) if before == 0 && bytes.len() > budget => {
                Some(RegistryError::PieceBudget)
            }
            Some((bytes, claimed)) => {
                pieces::report_bitfield(swarm, &msg.peer_id, bytes, *claimed).err()
            }
            None => None,
        };
        let after = swarm.get(&msg.peer_id).map_or(0, SwarmPeer::bitfield_bytes);
        self.account_bitfields(conn, before, after);
        let want = msg.offers.len().min(self.limits.max_offers_per_announce);
        let (targets, facts) = self.choose(msg, remote, want);
        let (forwarded, dropped, to_remote) = if want == 0 {
            (0, 0, Vec::new())
        } else {
            self.forward_offers(conn, msg, &targets, now)
        };
        let counts = self
            .swarms
            .get(&msg.info_hash)
            .map(Swarm::counts)
            .unwrap_or_default();
        Ok(Announced {
            counts,
            forwarded,
            dropped,
            warning,
            remote: to_remote,
            facts,
        })
    }

    /// Up to `want` members to forward the announce's offers to, and the
    /// announcing peer's swarm facts, both chosen by the piece map among the
    /// local members and `remote` (members on other nodes). Targets index
    /// the local members first, then `remote`.
    fn choose(
        &mut self,
        msg: &Announce<'_>,
        remote: &[RemoteMember],
        want: usize,
    ) -> (Vec<usize>, Option<SwarmFacts>) {
        let Some(swarm) = self.swarms.get(&msg.info_hash) else {
            return (Vec::new(), None);
        };
        let rng = &mut self.rng;
        if remote.is_empty() {
            // Alone, or no member elsewhere: the swarm's own list, as it is.
            let members = swarm.peers();
            let targets = if want == 0 {
                Vec::new()
            } else {
                swarm.introduce_among(rng, want, &msg.peer_id, members)
            };
            return (targets, swarm.facts_among(rng, &msg.peer_id, members));
        }
        let fields = candidate::remote_fields(remote, swarm.piece_count);
        let candidates: Vec<Candidate<'_>> = swarm
            .peers()
            .iter()
            .map(Candidate::Local)
            .chain(
                remote
                    .iter()
                    .zip(&fields)
                    .map(|(member, field)| Candidate::Remote(member, field.as_ref())),
            )
            .collect();
        let targets = if want == 0 {
            Vec::new()
        } else {
            swarm.introduce_among(rng, want, &msg.peer_id, &candidates)
        };
        (targets, swarm.facts_among(rng, &msg.peer_id, &candidates))
    }

    /// Forwards the announce's offers to `targets` (from [`Self::choose`]);
    /// returns (forwarded, dropped, offers for remote members).
    fn forward_offers(
        &mut self,
        conn: ConnId,
        msg: &Announce<'_>,
        targets: &[usize],
        now: Instant,
    ) -> (usize, usize, Vec<(usize, usize)>) {
        let Some(swarm) = self.swarms.get(&msg.info_hash) else {
            return (0, 0, Vec::new());
        };
        let local = swarm.peers().len();
        let (mut forwarded, mut dropped) = (0, 0);
        let mut to_remote = Vec::new();
        let mut sent = Vec::with_capacity(targets.len());
        for (index, (offer, &target)) in msg.offers.iter().zip(targets).enumerate() {
            if target >= local {
                to_remote.push((index, target - local));
                continue;
            }
            let Some(peer) = swarm.peers().get(target) else {
                continue;
            };
            let outbox = &peer.outbox;
            if !outbox.has_room() {
                dropped += 1;
                continue;
            }
            let text = reply::offer(&msg.info_hash, &msg.peer_id, &offer.offer_id, offer.offer);
            if outbox.try_send(text).is_ok() {
                forwarded += 1;
                sent.push(Pending {
                    offer_id: offer.offer_id,
                    from: msg.peer_id,
                    info_hash: msg.info_hash,
                    to: peer.peer_id,
                    to_conn: peer.conn,
                    expires: now + self.limits.offer_ttl,
                });
            } else {
                dropped += 1;
            }
        }
        let max_pending = self.limits.max_pending_offers_per_connection;
        if let Some(state) = self.conns.get_mut(&conn) {
            state.pending.expire(now);
            for pending in sent {
                state.pending.push(pending, max_pending);
            }
        }
        (forwarded, dropped, to_remote)
    }

    /// Relays an answer to the connection whose offer it answers, if that
    /// offer was forwarded to this very peer, is unexpired and unanswered. An
    /// offer that came from another node is checked here, where it was
    /// delivered, and the answer goes back to that node.
    pub(crate) fn answer(
        &mut self,
        conn: ConnId,
        msg: &Answer<'_>,
        now: Instant,
    ) -> Result<AnswerRoute, RegistryError> {
        self.claim(conn, msg.peer_id)?;
        let Some(&offerer) = self.owners.get(&msg.to_peer_id) else {
            return self.remote_answer(conn, msg, now);
        };
        let state = self
            .conns
            .get_mut(&offerer)
            .ok_or(RegistryError::UnknownPeer)?;
        let pending = state
            .pending
            .take(&msg.offer_id, |p| {
                p.from == msg.to_peer_id
                    && p.to == msg.peer_id
                    && p.to_conn == conn
                    && p.info_hash == msg.info_hash
            })
            .ok_or(RegistryError::UnsolicitedAnswer)?;
        if pending.expires <= now {
            return Err(RegistryError::ExpiredAnswer);
        }
        // Not written for a queue it would not fit in.
        if !state.outbox.has_room() {
            return Err(RegistryError::SlowPeer);
        }
        let text = reply::answer(&msg.info_hash, &msg.peer_id, &msg.offer_id, msg.answer);
        state
            .outbox
            .try_send(text)
            .map_err(|_| RegistryError::SlowPeer)?;
        Ok(AnswerRoute::Delivered)
    }

    /// An answer to an offer another node's peer made, if one was delivered
    /// to this connection from that peer.
    fn remote_answer(
        &mut self,
        conn: ConnId,
        msg: &Answer<'_>,
        now: Instant,
    ) -> Result<AnswerRoute, RegistryError> {
        let state = self
            .conns
            .get_mut(&conn)
            .ok_or(RegistryError::UnknownPeer)?;
        let position = state
            .remote_pending
            .iter()
            .position(|p| {
                p.offer_id == msg.offer_id
                    && p.from == msg.to_peer_id
                    && p.info_hash == msg.info_hash
            })
            .ok_or(RegistryError::UnknownPeer)?;
        let pending = state
            .remote_pending
            .remove(position)
            .ok_or(RegistryError::UnknownPeer)?;
        if pending.expires <= now {
            return Err(RegistryError::ExpiredAnswer);
        }
        Ok(AnswerRoute::Remote(pending.from_node))
    }

    /// Delivers an offer relayed from another node to the local owner of
    /// `to`, and remembers it so that owner may answer it.
    pub(crate) fn deliver_offer(&mut self, offer: RelayedOffer<'_>, now: Instant) -> bool {
        let Some(&conn) = self.owners.get(&offer.to) else {
            return false;
        };
        let max_pending = self.limits.max_pending_offers_per_connection;
        let expires = now + self.limits.offer_ttl;
        let Some(state) = self.conns.get_mut(&conn) else {
            return false;
        };
        if state.outbox.try_send(offer.text.to_owned()).is_err() {
            return false;
        }
        while state
            .remote_pending
            .front()
            .is_some_and(|p| p.expires <= now)
        {
            state.remote_pending.pop_front();
        }
        if state.remote_pending.len() >= max_pending {
            state.remote_pending.pop_front();
        }
        snug::push_back(
            &mut state.remote_pending,
            RemotePending {
                offer_id: offer.offer_id,
                from: offer.from,
                from_node: offer.from_node,
                info_hash: offer.info_hash,
                expires,
            },
        );
        true
    }

    /// Delivers an answer relayed from another node to the local owner of `to`.
    pub(crate) fn deliver_answer(&mut self, to: &PeerId, text: &str) -> bool {
        let Some(state) = self.owners.get(to).and_then(|c| self.conns.get(c)) else {
            return false;
        };
        state.outbox.try_send(text.to_owned()).is_ok()
    }

    /// Records pieces a peer gained (`x_cs_have`).
    pub(crate) fn have(
        &mut self,
        conn: ConnId,
        msg: &Have,
        now: Instant,
    ) -> Result<(), RegistryError> {
        self.claim(conn, msg.peer_id)?;
        let budget = self.bitfield_budget(conn);
        let swarm = self
            .swarms
            .get_mut(&msg.info_hash)
            .ok_or(RegistryError::NotInSwarm)?;
        let before = swarm.get(&msg.peer_id).map_or(0, SwarmPeer::bitfield_bytes);
        let needed = swarm.piece_count.map_or(0, |n| n.div_ceil(8) as usize);
        if before == 0 && needed > budget {
            return Err(RegistryError::PieceBudget);
        }
        pieces::report_have(swarm, &msg.peer_id, &msg.pieces, now)?;
        let after = swarm.get(&msg.peer_id).map_or(0, SwarmPeer::bitfield_bytes);
        self.account_bitfields(conn, before, after);
        if let Some(changed) = self.changed.as_mut() {
            changed.insert((msg.info_hash, msg.peer_id));
        }
        Ok(())
    }

    /// Bitfield bytes the connection's peers may still add.
    fn bitfield_budget(&self, conn: ConnId) -> usize {
        let used = self.conns.get(&conn).map_or(0, |c| c.bitfield_bytes);
        self.limits
            .max_bitfield_bytes_per_connection
            .saturating_sub(used)
    }

    /// Records that one of the connection's bitfields went from `before` to `after` bytes.
    fn account_bitfields(&mut self, conn: ConnId, before: usize, after: usize) {
        if let Some(state) = self.conns.get_mut(&conn) {
            state.bitfield_bytes = (state.bitfield_bytes + after).saturating_sub(before);
        }
    }

    /// Counts for `scrape`: the given swarms, or up to `limit` of all.
    pub(crate) fn scrape(
        &self,
        info_hashes: &[InfoHash],
        limit: usize,
    ) -> Vec<(InfoHash, SwarmCounts)> {
        if info_hashes.is_empty() {
            return self
                .swarms
                .iter()
                .take(limit)
                .map(|(ih, s)| (*ih, s.counts()))
                .collect();
        }
        info_hashes
            .iter()
            .take(limit)
            .map(|ih| {
                (
                    *ih,
                    self.swarms.get(ih).map(Swarm::counts).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// A swarm's counts, if it has peers.
    pub(crate) fn counts(&self, info_hash: &InfoHash) -> Option<SwarmCounts> {
        self.swarms.get(info_hash).map(Swarm::counts)
    }

    /// Number of swarms and of peers in them.
    pub(crate) fn totals(&self) -> (usize, usize) {
        (
            self.swarms.len(),
            self.swarms.values().map(Swarm::len).sum(),
        )
    }

    /// Drops peers silent for longer than the peer timeout and forgets
    /// expired offers. Returns the memberships dropped.
    pub(crate) fn sweep(&mut self, now: Instant) -> Vec<(InfoHash, PeerId)> {
        let mut dropped = Vec::new();
        if let Some(deadline) = now.checked_sub(self.limits.peer_timeout) {
            self.swarms.retain(|info_hash, swarm| {
                dropped.extend(swarm.expire(deadline).into_iter().map(|p| (*info_hash, p)));
                !swarm.is_empty()
            });
        }
        for (info_hash, peer) in &dropped {
            if let Some(state) = self.conns.get_mut(&peer.conn) {
                state.bitfield_bytes -= peer.bitfield_bytes().min(state.bitfield_bytes);
                state
                    .memberships
                    .retain(|m| *m != (*info_hash, peer.peer_id));
            }
        }
        for state in self.conns.values_mut() {
            state.pending.expire(now);
            state.remote_pending.retain(|p| p.expires > now);
        }
        dropped
            .into_iter()
            .map(|(info_hash, peer)| (info_hash, peer.peer_id))
            .collect()
    }

    /// Summaries of up to `limit` swarms, largest first.
    pub(crate) fn summaries(&self, limit: usize) -> Vec<SwarmSummary> {
        pieces::summaries(&self.swarms, limit)
    }

    /// Per-piece holders of one swarm.
    pub(crate) fn pieces(&self, info_hash: &InfoHash) -> Option<PieceReport> {
        self.swarms
            .get(info_hash)
            .map(|s| pieces::report(info_hash, s))
    }
}

#[cfg(test)]
mod tests;
