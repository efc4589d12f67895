//! One swarm: its peers, their counts, and which pieces each holds.

use std::collections::HashMap;
use std::time::Instant;

use chunkswarm_core::piece_map::Bitfield;
use chunkswarm_core::swarm::SwarmFacts;

use super::ConnId;
use crate::cluster::MemberReport;
use crate::introductions::{self, Asker, Holdings, Member};
use crate::signaling::ids::PeerId;
use crate::signaling::outbox::Outbox;
use crate::signaling::reply::SwarmCounts;

/// A peer of a swarm.
#[derive(Debug)]
pub(crate) struct SwarmPeer {
    pub(crate) peer_id: PeerId,
    pub(crate) conn: ConnId,
    /// The queue to its connection, for offers forwarded to it.
    pub(crate) outbox: Outbox,
    /// A seeder: `left` was 0, it sent `completed`, or its bitfield is full.
    pub(crate) complete: bool,
    /// Pieces it reported (chunkswarm extension); `None` if it never did, or
    /// once it is complete.
    pub(crate) pieces: Option<Bitfield>,
    /// The piece its playhead is in (`x_cs_position`), if it reported one.
    pub(crate) position: Option<u32>,
    pub(crate) last_seen: Instant,
}

impl Member for SwarmPeer {
    fn holdings(&self) -> Holdings<'_> {
        Holdings::reported(self.pieces.as_ref(), self.complete)
    }

    fn position(&self) -> Option<u32> {
        self.position
    }

    fn fetch_key(&self) -> Option<u64> {
        Some(introductions::facts::key_of(&self.peer_id.0))
    }

    fn can_take(&self) -> bool {
        self.outbox.has_room()
    }
}

impl SwarmPeer {
    /// Bytes its bitfield takes (0 if none).
    pub(crate) fn bitfield_bytes(&self) -> usize {
        self.pieces
            .as_ref()
            .map_or(0, |f| f.len().div_ceil(8) as usize)
    }

    /// How many pieces it is known to hold.
    pub(crate) fn held(&self, piece_count: Option<u32>) -> u32 {
        match (&self.pieces, self.complete) {
            (_, true) => piece_count.unwrap_or(0),
            (Some(field), false) => field.count_ones(),
            (None, false) => 0,
        }
    }
}

/// The peers of one info hash. Peers sit in a vector (for random choice)
/// with an index by peer id.
#[derive(Debug, Default)]
pub(crate) struct Swarm {
    peers: Vec<SwarmPeer>,
    index: HashMap<PeerId, usize>,
    seeders: u32,
    downloaded: u64,
    /// Pieces of the content, once known (from the library, or from the first
    /// bitfield reported).
    pub(crate) piece_count: Option<u32>,
}

impl Swarm {
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub(crate) fn counts(&self) -> SwarmCounts {
        SwarmCounts {
            complete: self.seeders,
            incomplete: u32::try_from(self.peers.len()).unwrap_or(u32::MAX) - self.seeders,
            downloaded: self.downloaded,
        }
    }

    pub(crate) fn peers(&self) -> &[SwarmPeer] {
        &self.peers
    }

    pub(crate) fn get(&self, peer_id: &PeerId) -> Option<&SwarmPeer> {
        self.peers.get(*self.index.get(peer_id)?)
    }

    pub(crate) fn get_mut(&mut self, peer_id: &PeerId) -> Option<&mut SwarmPeer> {
        let i = *self.index.get(peer_id)?;
        self.peers.get_mut(i)
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, peer_id: &PeerId) -> bool {
        self.index.contains_key(peer_id)
    }

    /// Adds a peer that is not yet a member.
    pub(crate) fn insert(&mut self, peer: SwarmPeer) {
        self.seeders += u32::from(peer.complete);
        self.index.insert(peer.peer_id, self.peers.len());
        self.peers.push(peer);
    }

    /// Removes a peer; returns it if it was a member.
    pub(crate) fn remove(&mut self, peer_id: &PeerId) -> Option<SwarmPeer> {
        let i = self.index.remove(peer_id)?;
        let peer = self.peers.swap_remove(i);
        if let Some(moved) = self.peers.get(i) {
            self.index.insert(moved.peer_id, i);
        }
        self.seeders -= u32::from(peer.complete);
        Some(peer)
    }

    /// Marks a member complete; `completed` says whether this was a
    /// `completed` event (counted in `downloaded`).
    pub(crate) fn set_complete(&mut self, peer_id: &PeerId, completed_event: bool) {
        let Some(&i) = self.index.get(peer_id) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(i) else {
            return;
        };
        if !peer.complete {
            peer.complete = true;
            peer.pieces = None;
            self.seeders += 1;
            if completed_event {
                self.downloaded += 1;
            }
        }
    }

    /// Up to `want` members to introduce `asker` to, by the piece map (see
    /// [`introductions`]). Returns indices into [`peers`](Self::peers).
    #[cfg(test)]
    pub(crate) fn introduce(
        &self,
        rng: &mut fastrand::Rng,
        want: usize,
        asker: &PeerId,
    ) -> Vec<usize> {
        self.introduce_among(rng, want, asker, &self.peers)
    }

    /// Like [`introduce`](Self::introduce), among `members`, whose first
    /// ones are this swarm's peers in order (more may follow: members on
    /// other nodes).
    pub(crate) fn introduce_among<M: Member>(
        &self,
        rng: &mut fastrand::Rng,
        want: usize,
        asker: &PeerId,
        members: &[M],
    ) -> Vec<usize> {
        let index = self.index.get(asker).copied();
        let me = index.and_then(|i| self.peers.get(i));
        let asker = Asker {
            holdings: me.map_or(Holdings::Unknown, Member::holdings),
            position: me.and_then(|p| p.position),
            index,
            piece_count: self.piece_count.unwrap_or(0),
        };
        introductions::choose(&asker, members, want, rng)
    }

    /// The swarm facts for `asker` among `members` (laid out as for
    /// [`introduce_among`](Self::introduce_among)), if it reported its
    /// pieces: a WebTorrent client would not read them.
    pub(crate) fn facts_among<M: Member>(
        &self,
        rng: &mut fastrand::Rng,
        asker: &PeerId,
        members: &[M],
    ) -> Option<SwarmFacts> {
        let index = self.index.get(asker).copied();
        let me = self.peers.get(index?)?;
        let holdings = me.holdings();
        if matches!(holdings, Holdings::Unknown) {
            return None;
        }
        let asker = Asker {
            holdings,
            position: me.position,
            index,
            piece_count: self.piece_count?,
        };
        Some(introductions::facts::summarize(&asker, members, rng))
    }

    /// What `peer_id` reported, as the cluster shares it.
    pub(crate) fn report(&self, peer_id: &PeerId) -> Option<MemberReport> {
        let peer = self.get(peer_id)?;
        Some(MemberReport {
            complete: peer.complete,
            position: peer.position,
            pieces: peer
                .pieces
                .as_ref()
                .map(|field| (field.len(), field.to_bytes())),
        })
    }

    /// Removes members not seen since `deadline`; returns them.
    pub(crate) fn expire(&mut self, deadline: Instant) -> Vec<SwarmPeer> {
        let stale: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| p.last_seen < deadline)
            .map(|p| p.peer_id)
            .collect();
        stale.iter().filter_map(|id| self.remove(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::ids::Id20;

    /// A queue with room whose receiving side stays open.
    fn open_outbox() -> Outbox {
        let (outbox, inbox) = crate::signaling::outbox::outbox(1);
        std::mem::forget(inbox);
        outbox
    }

    fn peer(n: u8, complete: bool) -> SwarmPeer {
        SwarmPeer {
            peer_id: Id20([n; 20]),
            conn: u64::from(n),
            outbox: open_outbox(),
            complete,
            pieces: None,
            position: None,
            last_seen: Instant::now(),
        }
    }

    #[test]
    fn counts_follow_inserts_removals_and_completion() {
        let mut swarm = Swarm::default();
        for n in 0..10 {
            swarm.insert(peer(n, n % 3 == 0));
        }
        assert_eq!(swarm.counts().complete, 4);
        assert_eq!(swarm.counts().incomplete, 6);
        swarm.set_complete(&Id20([1; 20]), true);
        swarm.set_complete(&Id20([1; 20]), true);
        assert_eq!(
            swarm.counts(),
            SwarmCounts {
                complete: 5,
                incomplete: 5,
                downloaded: 1
            }
        );
        assert!(swarm.remove(&Id20([0; 20])).is_some());
        assert!(swarm.remove(&Id20([0; 20])).is_none());
        assert_eq!(swarm.counts().complete, 4);
        for p in swarm.peers() {
            assert!(swarm.contains(&p.peer_id));
        }
    }

    #[test]
    fn introduce_gives_distinct_eligible_peers() {
        let mut rng = fastrand::Rng::with_seed(7);
        for size in [0u8, 1, 2, 5, 40, 200] {
            let mut swarm = Swarm::default();
            for n in 0..size {
                swarm.insert(peer(n, n % 2 == 1));
            }
            let me = Id20([0; 20]);
            swarm.set_complete(&me, false);
            let picks = swarm.introduce(&mut rng, 10, &me);
            let mut sorted = picks.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), picks.len());
            assert!(picks.len() <= 10);
            for i in picks {
                assert_ne!(swarm.peers()[i].peer_id, me);
                assert!(!swarm.peers()[i].complete);
            }
        }
    }
}
