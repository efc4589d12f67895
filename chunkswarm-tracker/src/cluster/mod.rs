//! One tracker alone, or several tracker processes acting as one through
//! Redis (cluster mode, [`Config::redis`](crate::Config::redis)).
//!
//! Each node keeps its own connections, their peers and the chunk registry
//! of those peers in its [`Registry`](crate::registry). The [`Cluster`] adds
//! what the other nodes know, and the signaling asks it at three points:
//!
//! 1. before a connection first uses a `peer_id`, [`Cluster::claim`]: a
//!    `peer_id` belongs to one node at a time, so another node's peer cannot
//!    take it (anti-spoofing across nodes);
//! 2. on each announce, [`Cluster::join`] records the peer as a member of the
//!    swarm, with its piece report and playback position, and returns the
//!    members on other nodes with theirs: the piece map then chooses the
//!    announce's offer recipients among local and remote members alike
//!    ([`crate::introductions`]), and the counts in the reply are the
//!    cluster's;
//! 3. an offer for a remote member, and the answer to it, travel as a
//!    [`Relay`] to the node of the peer they are for ([`Cluster::relay`]);
//!    the answerer's node checks the answer against the offer it delivered,
//!    as it does for local offers.
//!
//! Peers that leave (a `stopped` announce, a closed connection, silence) are
//! forgotten with [`Cluster::forget`].
//!
//! [`Alone`] is the single-process tracker: every `peer_id` is free, there
//! are no remote members. [`RedisCluster`] shares the state through Redis;
//! see its docs for the keys, the lease that bounds how long a dead node's
//! peers linger, and what happens while Redis is unreachable.

mod redis;
mod relay;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chunkswarm_core::metainfo::InfoHash;

pub(crate) use redis::RedisCluster;
pub(crate) use relay::Relay;

use crate::signaling::ids::PeerId;
use crate::signaling::reply::SwarmCounts;

/// Names a tracker process in a cluster: random, drawn at start.
pub(crate) type NodeId = u64;

/// Whether the tracker shares its swarms, and whether it can right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterState {
    /// No cluster configured.
    Alone,
    /// Connected to Redis: swarms are cluster-wide.
    Connected,
    /// Redis is unreachable: the node serves its own peers only, and resyncs
    /// when Redis is back.
    Unreachable,
}

impl ClusterState {
    /// The word `/healthz` and the metrics use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Alone => "alone",
            Self::Connected => "connected",
            Self::Unreachable => "redis unreachable",
        }
    }
}

/// What a member reported, as the cluster shares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemberReport {
    /// A seeder.
    pub(crate) complete: bool,
    /// The piece its playhead is in.
    pub(crate) position: Option<u32>,
    /// Its bitfield: the piece count and the BEP 3 bytes (pieces gained by
    /// `x_cs_have` are shared at the next heartbeat).
    pub(crate) pieces: Option<(u32, Vec<u8>)>,
}

/// A member of a swarm connected to another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteMember {
    pub(crate) peer_id: PeerId,
    pub(crate) node: NodeId,
    pub(crate) report: MemberReport,
}

/// A swarm as the other nodes hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteSwarm {
    /// Seeders and leechers on other nodes (`downloaded` is not shared).
    pub(crate) counts: SwarmCounts,
    /// The members on other nodes.
    pub(crate) members: Vec<RemoteMember>,
}

/// What the node holds, for a cluster that (re)connects to write it again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Peer ids of local connections.
    pub(crate) peer_ids: Vec<PeerId>,
    /// Local swarm members and what each reported.
    pub(crate) members: Vec<(InfoHash, PeerId, MemberReport)>,
}

/// What a cluster's background task needs from its tracker.
pub(crate) trait ClusterHost: Send + Sync {
    /// The node's current peers and memberships.
    fn snapshot(&self) -> Snapshot;
    /// Members whose pieces grew (`x_cs_have`) since the last call.
    fn changed(&self) -> Vec<(InfoHash, PeerId, MemberReport)>;
    /// Delivers a message another node relayed.
    fn deliver(&self, relay: Relay);
}

/// A boxed future, for the object-safe [`Cluster`].
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The state the nodes share; see the module docs for when each is called.
pub(crate) trait Cluster: Send + Sync + fmt::Debug {
    /// Whether swarms are shared right now.
    fn state(&self) -> ClusterState;

    /// This node's id.
    fn node(&self) -> NodeId;

    /// Takes `peer_id` for this node. False if a live node holds it;
    /// true when alone or while Redis is unreachable.
    fn claim(&self, peer_id: PeerId) -> BoxFuture<'_, bool>;

    /// Records a local member (or refreshes it) and returns the members on
    /// other nodes.
    fn join(
        &self,
        info_hash: InfoHash,
        peer_id: PeerId,
        report: MemberReport,
    ) -> BoxFuture<'_, RemoteSwarm>;

    /// The members of a swarm on other nodes, without joining it.
    fn members(&self, info_hash: InfoHash) -> BoxFuture<'_, RemoteSwarm>;

    /// The counts of other nodes' members, one per info hash.
    fn remote_counts<'a>(&'a self, info_hashes: &'a [InfoHash]) -> BoxFuture<'a, Vec<SwarmCounts>>;

    /// Every swarm with members on other nodes, with those members; `None`
    /// while Redis is unreachable (only the local swarms are known then).
    fn remote_swarms(&self) -> BoxFuture<'_, Option<Vec<(InfoHash, RemoteSwarm)>>>;

    /// Forgets local peer ids and memberships; returns at once.
    fn forget(&self, peer_ids: Vec<PeerId>, memberships: Vec<(InfoHash, PeerId)>);

    /// Sends `relay` to `node`; returns at once, lost if Redis is unreachable.
    fn relay(&self, node: NodeId, relay: Relay);

    /// Keeps the node in the cluster until the future is dropped: connects,
    /// writes the host's [`Snapshot`], heartbeats, delivers relays, and
    /// reconnects after Redis failures.
    fn run<'a>(&'a self, host: &'a dyn ClusterHost) -> BoxFuture<'a, ()>;
}

/// The tracker alone: nothing is shared.
#[derive(Debug, Default)]
pub(crate) struct Alone;

impl Cluster for Alone {
    fn state(&self) -> ClusterState {
        ClusterState::Alone
    }

    fn node(&self) -> NodeId {
        0
    }

    fn claim(&self, _peer_id: PeerId) -> BoxFuture<'_, bool> {
        Box::pin(std::future::ready(true))
    }

    fn join(&self, _: InfoHash, _: PeerId, _: MemberReport) -> BoxFuture<'_, RemoteSwarm> {
        Box::pin(std::future::ready(RemoteSwarm::default()))
    }

    fn members(&self, _: InfoHash) -> BoxFuture<'_, RemoteSwarm> {
        Box::pin(std::future::ready(RemoteSwarm::default()))
    }

    fn remote_counts<'a>(&'a self, info_hashes: &'a [InfoHash]) -> BoxFuture<'a, Vec<SwarmCounts>> {
        Box::pin(std::future::ready(vec![
            SwarmCounts::default();
            info_hashes.len()
        ]))
    }

    fn remote_swarms(&self) -> BoxFuture<'_, Option<Vec<(InfoHash, RemoteSwarm)>>> {
        Box::pin(std::future::ready(Some(Vec::new())))
    }

    fn forget(&self, _: Vec<PeerId>, _: Vec<(InfoHash, PeerId)>) {}

    fn relay(&self, _: NodeId, _: Relay) {}

    fn run<'a>(&'a self, _host: &'a dyn ClusterHost) -> BoxFuture<'a, ()> {
        Box::pin(std::future::pending())
    }
}

/// `a` plus `b`, for counts of local and remote members.
pub(crate) fn sum(a: SwarmCounts, b: SwarmCounts) -> SwarmCounts {
    SwarmCounts {
        complete: a.complete + b.complete,
        incomplete: a.incomplete + b.incomplete,
        downloaded: a.downloaded + b.downloaded,
    }
}
