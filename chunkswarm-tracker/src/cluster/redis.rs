//! The cluster on Redis: several tracker nodes share peer-id ownership,
//! swarm membership and counts, and relay offers and answers to each other.
//!
//! # Keys
//!
//! | key | what |
//! |---|---|
//! | `cs:node:{node}` | a node's lease: renewed every [`HEARTBEAT`], lapses after [`LEASE`] |
//! | `cs:nodes` | set of the nodes that joined, for the live ones to find dead ones |
//! | `cs:peer:{peer_id hex}` | the node that owns a `peer_id`; expires after the peer timeout without an announce |
//! | `cs:swarm:{info_hash hex}` | hash: `peer_id hex` → `"{node} {1 if seeder else 0} {unix ms of its last announce} {playback piece or -} {piece count or -} {bitfield hex or -}"` |
//! | `cs:node:{node}:swarms` | the swarms a node has had members in, to clean up after it and to list every swarm |
//! | channel `cs:to:{node}` | [`Relay`]s for the peers of that node |
//!
//! # A node that dies
//!
//! Its lease lapses at most [`LEASE`] (6 s) after its last heartbeat. From
//! then on its members no longer count or receive offers (every read of a
//! swarm checks the leases of the nodes known at the last heartbeat) and a
//! `peer_id` it owned can be claimed on another node, where its client
//! reconnects and announces again; within one more [`HEARTBEAT`] a live node
//! deletes its entries. A node that joined since the reader's last
//! heartbeat counts as live.
//!
//! # Redis unreachable
//!
//! A failed heartbeat drops the connection: the node then serves its own
//! peers alone ([`ClusterState::Unreachable`], shown by `/healthz` and the
//! `cluster_connected` metric), claims every free-looking `peer_id`, and
//! tries to reconnect every second. Once back it deletes what Redis still
//! holds of its own and writes its current peers and memberships again
//! (last writer wins for a `peer_id` claimed on two nodes meanwhile).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chunkswarm_core::metainfo::InfoHash;
use futures_util::StreamExt as _;
use redis::aio::MultiplexedConnection;

use super::{
    BoxFuture, Cluster, ClusterHost, ClusterState, MemberReport, NodeId, Relay, RemoteMember,
    RemoteSwarm,
};
use crate::signaling::ids::{Id20, PeerId};
use crate::signaling::reply::SwarmCounts;

/// How often a node renews its lease and looks for dead nodes.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a lease lasts without renewal.
pub(crate) const LEASE: Duration = Duration::from_secs(6);
/// Longest wait for one Redis request before the node goes on alone.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Wait between reconnection attempts.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// Most swarms of other nodes read for one listing of every swarm.
const MAX_LISTED: usize = 100_000;
/// Swarms read per Redis request when listing them all.
const LIST_CHUNK: usize = 1_000;

/// Takes `KEYS[1]` (a peer key) for node `ARGV[1]` for `ARGV[2]` ms unless a
/// live other node holds it; 1 if taken.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', 'cs:node:' .. owner) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Deletes `KEYS[1]` if its value is `ARGV[1]`.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

fn peer_key(peer_id: &PeerId) -> String {
    format!("cs:peer:{}", peer_id.to_hex())
}

fn swarm_key(info_hash: &InfoHash) -> String {
    format!("cs:swarm:{}", info_hash.to_hex())
}

fn lease_key(node: NodeId) -> String {
    format!("cs:node:{node}")
}

fn swarms_key(node: NodeId) -> String {
    format!("cs:node:{node}:swarms")
}

fn channel(node: NodeId) -> String {
    format!("cs:to:{node}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One `cs:swarm:*` entry.
struct Entry {
    peer_id: PeerId,
    node: NodeId,
    announced_ms: u64,
    report: MemberReport,
}

fn parse_entry(field: &str, value: &str) -> Option<Entry> {
    let mut bytes = [0u8; 20];
    hex::decode_to_slice(field, &mut bytes).ok()?;
    let mut parts = value.split(' ');
    let node = parts.next()?.parse().ok()?;
    let complete = parts.next()? == "1";
    let announced_ms = parts.next()?.parse().ok()?;
    let position = parts.next().and_then(|p| p.parse().ok());
    let count = parts.next().and_then(|c| c.parse::<u32>().ok());
    let bits = parts.next().and_then(|b| hex::decode(b).ok());
    Some(Entry {
        peer_id: Id20(bytes),
        node,
        announced_ms,
        report: MemberReport {
            complete,
            position,
            pieces: count.zip(bits),
        },
    })
}

/// The value of a member's `cs:swarm:*` entry.
fn member_value(node: NodeId, report: &MemberReport) -> String {
    let position = report
        .position
        .map_or_else(|| "-".to_owned(), |p| p.to_string());
    let (count, bits) = report.pieces.as_ref().map_or_else(
        || ("-".to_owned(), "-".to_owned()),
        |(count, bytes)| (count.to_string(), hex::encode(bytes)),
    );
    format!(
        "{node} {} {} {position} {count} {bits}",
        u8::from(report.complete),
        now_ms()
    )
}

/// A node of a cluster on Redis.
#[derive(Debug)]
pub(crate) struct RedisCluster {
    node: NodeId,
    client: redis::Client,
    /// Present while Redis is reachable.
    connection: Mutex<Option<MultiplexedConnection>>,
    /// Nodes whose lease lapsed; their entries are ignored.
    dead: Mutex<HashSet<NodeId>>,
    /// The other nodes seen at the last heartbeat: every read of swarms also
    /// checks their leases, so a node is ignored from the moment its lease
    /// lapses (when its peers' ids become claimable elsewhere).
    known: Mutex<Vec<NodeId>>,
    /// Members silent for longer are ignored (their node forgets them too).
    peer_timeout: Duration,
    /// An unreachable Redis was reported once.
    warned: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisCluster {
    /// A node for the Redis at `url` (`redis://host:port/db`); connects in
    /// [`Cluster::run`].
    pub(crate) fn new(url: &str, peer_timeout: Duration) -> Result<Self, redis::RedisError> {
        Ok(Self {
            node: fastrand::u64(..),
            client: redis::Client::open(url)?,
            connection: Mutex::new(None),
            dead: Mutex::new(HashSet::new()),
            known: Mutex::new(Vec::new()),
            peer_timeout,
            warned: AtomicBool::new(false),
        })
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
        lock(&self.connection).clone()
    }

    /// Runs `pipe`; `None` if Redis is unreachable or fails.
    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        let mut connection = self.connection()?;
        if pipe.is_empty() {
            // Redis refuses an empty pipeline; its answer is no answers.
            return redis::from_redis_value(redis::Value::Array(Vec::new())).ok();
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, pipe.query_async(&mut connection)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis request failed");
                None
            }
            Err(_) => {
                tracing::debug!("redis request timed out");
                None
            }
        }
    }

    /// Sends `pipe` in the background.
    fn fire(&self, pipe: redis::Pipeline) {
        let Some(mut connection) = self.connection() else {
            return;
        };
        tokio::spawn(async move {
            let sent = pipe.query_async::<()>(&mut connection);
            if let Ok(Err(e)) = tokio::time::timeout(REQUEST_TIMEOUT, sent).await {
                tracing::debug!(error = %e, "redis write failed");
            }
        });
    }

    /// Runs `pipe` (its own commands ignored) and reads the swarms of
    /// `info_hashes`, checking the known nodes' leases in the same request.
    async fn read_swarms(
        &self,
        mut pipe: redis::Pipeline,
        info_hashes: &[InfoHash],
    ) -> Option<Vec<RemoteSwarm>> {
        for info_hash in info_hashes {
            pipe.hgetall(swarm_key(info_hash));
        }
        let known = lock(&self.known).clone();
        for node in &known {
            pipe.exists(lease_key(*node));
        }
        let mut values: Vec<redis::Value> = self.query(&pipe).await?;
        let leases = values.split_off(info_hashes.len().min(values.len()));
        let lapsed = known
            .iter()
            .zip(leases)
            .filter(|(_, alive)| !redis::from_redis_value::<bool>(alive.clone()).unwrap_or(true))
            .map(|(node, _)| *node);
        lock(&self.dead).extend(lapsed);
        let swarms = values
            .into_iter()
            .map(|v| redis::from_redis_value::<HashMap<String, String>>(v).unwrap_or_default())
            .map(|entries| self.remote(entries))
            .collect();
        Some(swarms)
    }

    /// Entries of live other nodes, announced within the peer timeout.
    fn remote(&self, entries: HashMap<String, String>) -> RemoteSwarm {
        let dead = lock(&self.dead);
        let oldest = now_ms().saturating_sub(self.peer_timeout.as_millis() as u64);
        let mut swarm = RemoteSwarm::default();
        for entry in entries.iter().filter_map(|(f, v)| parse_entry(f, v)) {
            if entry.node == self.node || dead.contains(&entry.node) {
                continue;
            }
            if entry.announced_ms < oldest {
                continue;
            }
            if entry.report.complete {
                swarm.counts.complete += 1;
            } else {
                swarm.counts.incomplete += 1;
            }
            swarm.members.push(RemoteMember {
                peer_id: entry.peer_id,
                node: entry.node,
                report: entry.report,
            });
        }
        swarm
    }

    fn peer_ttl_ms(&self) -> u64 {
        (self.peer_timeout.as_millis() as u64).max(1)
    }

    /// Deletes every `cs:swarm` entry of `node` and its list of swarms.
    async fn purge(&self, node: NodeId) -> Option<()> {
        let swarms: Vec<String> = self
            .query::<(Vec<String>,)>(redis::pipe().smembers(swarms_key(node)))
            .await?
            .0;
        let mut read = redis::pipe();
        for hex in &swarms {
            read.hgetall(format!("cs:swarm:{hex}"));
        }
        let all: Vec<HashMap<String, String>> = self.query(&read).await?;
        let mut delete = redis::pipe();
        for (hex, entries) in swarms.iter().zip(all) {
            for (field, value) in &entries {
                if parse_entry(field, value).is_some_and(|e| e.node == node) {
                    delete.hdel(format!("cs:swarm:{hex}"), field).ignore();
                }
            }
        }
        delete.del(swarms_key(node)).ignore();
        self.query::<()>(&delete).await
    }

    /// Writes the host's peers and memberships after (re)connecting.
    async fn resync(&self, host: &dyn ClusterHost) -> Option<()> {
        self.purge(self.node).await?;
        let snapshot = host.snapshot();
        let mut pipe = redis::pipe();
        pipe.set(lease_key(self.node), 1)
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .ignore();
        pipe.sadd("cs:nodes", self.node).ignore();
        for peer_id in &snapshot.peer_ids {
            pipe.set(peer_key(peer_id), self.node)
                .arg("PX")
                .arg(self.peer_ttl_ms())
                .ignore();
        }
        for (info_hash, peer_id, report) in &snapshot.members {
            pipe.hset(
                swarm_key(info_hash),
                peer_id.to_hex(),
                member_value(self.node, report),
            )
            .ignore();
            pipe.sadd(swarms_key(self.node), info_hash.to_hex())
                .ignore();
        }
        self.query::<()>(&pipe).await?;
        tracing::info!(
            node = self.node,
            peers = snapshot.peer_ids.len(),
            memberships = snapshot.members.len(),
            "joined the cluster"
        );
        Some(())
    }

    /// Renews the lease, shares the pieces members gained since, and finds
    /// and purges nodes whose lease lapsed.
    async fn heartbeat(&self, host: &dyn ClusterHost) -> Option<()> {
        let mut pipe = redis::pipe();
        pipe.set(lease_key(self.node), 1)
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .ignore();
        for (info_hash, peer_id, report) in host.changed() {
            pipe.hset(
                swarm_key(&info_hash),
                peer_id.to_hex(),
                member_value(self.node, &report),
            )
            .ignore();
        }
        pipe.sadd("cs:nodes", self.node).ignore();
        pipe.smembers("cs:nodes");
        let (nodes,): (Vec<NodeId>,) = self.query(&pipe).await?;
        let others: Vec<NodeId> = nodes.into_iter().filter(|&n| n != self.node).collect();
        lock(&self.known).clone_from(&others);
        let mut exists = redis::pipe();
        for node in &others {
            exists.exists(lease_key(*node));
        }
        let alive: Vec<bool> = self.query(&exists).await?;
        let dead: Vec<NodeId> = others
            .iter()
            .zip(alive)
            .filter(|(_, alive)| !alive)
            .map(|(node, _)| *node)
            .collect();
        for &node in &dead {
            tracing::info!(node, "node left the cluster: forgetting its peers");
            self.purge(node).await?;
            self.query::<()>(redis::pipe().srem("cs:nodes", node).ignore())
                .await?;
        }
        lock(&self.dead).extend(dead);
        Some(())
    }

    /// Connected: heartbeats and delivers relays until Redis fails.
    async fn serve(&self, host: &dyn ClusterHost) -> Result<(), redis::RedisError> {
        let connection = self.client.get_multiplexed_async_connection().await?;
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(channel(self.node)).await?;
        let mut messages = pubsub.into_on_message();
        *lock(&self.connection) = Some(connection);
        self.warned.store(false, Ordering::Relaxed);
        if self.resync(host).await.is_none() {
            return Ok(());
        }
        let mut ticks = tokio::time::interval(HEARTBEAT);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if self.heartbeat(host).await.is_none() {
                        return Ok(());
                    }
                }
                message = messages.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let payload: String = message.get_payload().unwrap_or_default();
                    match Relay::decode(&payload) {
                        Some(relay) => host.deliver(relay),
                        None => tracing::debug!("unreadable relay dropped"),
                    }
                }
            }
        }
    }
}

impl Cluster for RedisCluster {
    fn state(&self) -> ClusterState {
        if lock(&self.connection).is_some() {
            ClusterState::Connected
        } else {
            ClusterState::Unreachable
        }
    }

    fn node(&self) -> NodeId {
        self.node
    }

    fn claim(&self, peer_id: PeerId) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.cmd("EVAL")
                .arg(CLAIM)
                .arg(1)
                .arg(peer_key(&peer_id))
                .arg(self.node)
                .arg(self.peer_ttl_ms());
            match self.query::<(i64,)>(&pipe).await {
                Some((taken,)) => taken == 1,
                None => true,
            }
        })
    }

    fn join(
        &self,
        info_hash: InfoHash,
        peer_id: PeerId,
        report: MemberReport,
    ) -> BoxFuture<'_, RemoteSwarm> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.hset(
                swarm_key(&info_hash),
                peer_id.to_hex(),
                member_value(self.node, &report),
            )
            .ignore();
            pipe.sadd(swarms_key(self.node), info_hash.to_hex())
                .ignore();
            pipe.pexpire(peer_key(&peer_id), self.peer_ttl_ms() as i64)
                .ignore();
            let swarms = self.read_swarms(pipe, &[info_hash]).await;
            swarms
                .and_then(|swarms| swarms.into_iter().next())
                .unwrap_or_default()
        })
    }

    fn members(&self, info_hash: InfoHash) -> BoxFuture<'_, RemoteSwarm> {
        Box::pin(async move {
            let swarms = self.read_swarms(redis::pipe(), &[info_hash]).await;
            swarms
                .and_then(|swarms| swarms.into_iter().next())
                .unwrap_or_default()
        })
    }

    fn remote_counts<'a>(&'a self, info_hashes: &'a [InfoHash]) -> BoxFuture<'a, Vec<SwarmCounts>> {
        Box::pin(async move {
            match self.read_swarms(redis::pipe(), info_hashes).await {
                Some(swarms) => swarms.into_iter().map(|s| s.counts).collect(),
                None => vec![SwarmCounts::default(); info_hashes.len()],
            }
        })
    }

    fn remote_swarms(&self) -> BoxFuture<'_, Option<Vec<(InfoHash, RemoteSwarm)>>> {
        Box::pin(async move {
            // The live other nodes' lists of swarms: a swarm may have lost
            // its members since, and is then read and left out.
            let (nodes,): (Vec<NodeId>,) = self.query(redis::pipe().smembers("cs:nodes")).await?;
            let others: Vec<NodeId> = {
                let dead = lock(&self.dead);
                nodes
                    .into_iter()
                    .filter(|n| *n != self.node && !dead.contains(n))
                    .collect()
            };
            if others.is_empty() {
                return Some(Vec::new());
            }
            let mut union = redis::pipe();
            union.cmd("SUNION");
            for node in &others {
                union.arg(swarms_key(*node));
            }
            let (hexes,): (Vec<String>,) = self.query(&union).await?;
            let hashes: Vec<InfoHash> = hexes
                .iter()
                .filter_map(|hex| InfoHash::from_hex(hex))
                .take(MAX_LISTED)
                .collect();
            let mut listed = Vec::new();
            for chunk in hashes.chunks(LIST_CHUNK) {
                let swarms = self.read_swarms(redis::pipe(), chunk).await?;
                listed.extend(
                    chunk
                        .iter()
                        .copied()
                        .zip(swarms)
                        .filter(|(_, swarm)| !swarm.members.is_empty()),
                );
            }
            Some(listed)
        })
    }

    fn forget(&self, peer_ids: Vec<PeerId>, memberships: Vec<(InfoHash, PeerId)>) {
        if peer_ids.is_empty() && memberships.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for peer_id in &peer_ids {
            pipe.cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(peer_key(peer_id))
                .arg(self.node)
                .ignore();
        }
        for (info_hash, peer_id) in &memberships {
            pipe.hdel(swarm_key(info_hash), peer_id.to_hex()).ignore();
        }
        self.fire(pipe);
    }

    fn relay(&self, node: NodeId, relay: Relay) {
        let mut pipe = redis::pipe();
        pipe.publish(channel(node), relay.encode()).ignore();
        self.fire(pipe);
    }

    fn run<'a>(&'a self, host: &'a dyn ClusterHost) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            loop {
                let result = self.serve(host).await;
                // Said once per outage, not at every failed reconnection.
                let was_connected = lock(&self.connection).take().is_some();
                match result {
                    Ok(()) if was_connected => {
                        tracing::warn!("redis connection lost: serving local peers only");
                    }
                    Err(e) if was_connected || !self.warned.swap(true, Ordering::Relaxed) => {
                        tracing::warn!(error = %e, "redis unreachable: serving local peers only");
                    }
                    _ => tracing::debug!("redis still unreachable"),
                }
                tokio::time::sleep(RECONNECT_EVERY).await;
            }
        })
    }
}
