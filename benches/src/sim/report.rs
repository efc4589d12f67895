//! The JSON report of a run.

use std::time::Duration;

use chunkswarm_core::swarm::OriginFetches;
use serde::Serialize;

use super::Simulation;
use super::detail::{PeerDetail, Sample};

/// p50, p95 and max of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            p50: at(0.5),
            p95: at(0.95),
            max: at(1.0),
        })
    }
}

/// What a run measured. Byte counts are summed over the swarm's peers (the
/// HTTP-only reference viewer excluded).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// How the tracker introduced peers.
    pub introductions: super::Introductions,
    /// Peers that took part (joined, whether or not they left).
    pub peers: usize,
    /// Content length.
    pub file_bytes: u64,
    /// Verified bytes peers received from peers.
    pub p2p_bytes: u64,
    /// Verified bytes peers received from the origin.
    pub http_bytes: u64,
    /// Bytes peers received and threw away: duplicates (endgame, races with
    /// the origin, blocks that crossed a cancel) and failed pieces.
    pub wasted_bytes: u64,
    /// p2p / (p2p + http).
    pub offload: f64,
    /// (N-1)/N: the best offload when each byte must leave the origin once.
    pub offload_ceiling: f64,
    /// Bytes the origin sent, in files.
    pub origin_bytes_per_file: f64,
    /// Join-to-complete time of peers that completed.
    pub completion_s: Option<Summary>,
    /// Lower bound on distribution time: max(F/u_origin, F/d_min, N F/(u_origin + sum u_peers)).
    pub fluid_bound_s: f64,
    /// Join-to-first-playable-piece time of streaming viewers.
    pub startup_s: Option<Summary>,
    /// Total playback stall of streaming viewers that do not seek.
    pub stall_s: Option<Summary>,
    /// Viewers that seek once.
    pub seekers: usize,
    /// From a seek until the new position played, of seekers that seeked.
    pub seek_to_play_s: Option<Summary>,
    /// Total stall of seekers besides waiting on their seek.
    pub seekers_stall_s: Option<Summary>,
    /// Of each peer's verified bytes, the share from peers, in join order;
    /// only for runs of at most 10 peers.
    pub p2p_share_by_peer: Vec<f64>,
    /// Startup of the HTTP-only reference viewer.
    pub http_only_startup_s: Option<f64>,
    /// Total stall of the HTTP-only reference viewer.
    pub http_only_stall_s: Option<f64>,
    /// Peers that stayed but did not complete within the time limit.
    pub incomplete: usize,
    /// Peers that corrupt blocks.
    pub corrupt_peers: usize,
    /// Honest peers banned by anyone.
    pub banned_honest: usize,
    /// Corrupt peers banned by at least one peer.
    pub banned_corrupt: usize,
    /// Bytes handed to a store that did not match the content.
    pub unverified_bytes_delivered: u64,
    /// HTTP range requests made.
    pub origin_requests: u64,
    /// Origin fetches the swarm's peers started, by the reason each paid for
    /// (the HTTP-only reference viewer not included).
    pub origin_fetches: OriginFetchCounts,
    /// With [`Simulation::with_detail`]: every peer's figures, in join order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_peer: Vec<PeerDetail>,
    /// With [`Simulation::with_detail`]: the swarm every
    /// few seconds of virtual time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Sample>,
    /// Virtual time the run took.
    pub virtual_s: f64,
    /// Wall-clock time the run took.
    pub wall_s: f64,
}

/// [`OriginFetches`] summed over peers.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OriginFetchCounts {
    /// The first piece, or the playhead's, fetched at once.
    pub fast_start: u64,
    /// Playback rescues.
    pub deadline: u64,
    /// Pieces whose peer attempts ran out.
    pub retries_exhausted: u64,
    /// Pieces no connected peer held.
    pub no_peer_source: u64,
}

impl OriginFetchCounts {
    pub(super) fn add(&mut self, one: OriginFetches) {
        self.fast_start += u64::from(one.fast_start);
        self.deadline += u64::from(one.deadline);
        self.retries_exhausted += u64::from(one.retries_exhausted);
        self.no_peer_source += u64::from(one.no_peer_source);
    }
}

pub(super) fn build(sim: &Simulation, wall: Duration) -> Report {
    let params = &sim.params;
    let swarm_peers: Vec<usize> = (0..sim.peers.len())
        .filter(|&i| {
            !sim.peers[i].isolated
                && (sim.peers[i].swarm.is_some() || sim.peers[i].left_at.is_some())
        })
        .collect();
    let now = sim.instant();
    let (mut p2p, mut http, mut wasted) = (0u64, 0u64, 0u64);
    let mut origin_fetches = OriginFetchCounts::default();
    for &i in &swarm_peers {
        if let Some(swarm) = &sim.peers[i].swarm {
            let stats = swarm.stats(now);
            p2p += stats.p2p_bytes;
            http += stats.http_bytes;
            wasted += stats.wasted_bytes;
            origin_fetches.add(stats.origin_fetches);
        }
    }
    let completion: Vec<f64> = swarm_peers
        .iter()
        .filter_map(|&i| {
            let peer = &sim.peers[i];
            peer.completed_at
                .map(|at| (at - peer.joins_at).as_secs_f64())
        })
        .collect();
    let viewers: Vec<usize> = swarm_peers
        .iter()
        .copied()
        .filter(|&i| sim.peers[i].viewer.is_some())
        .collect();
    let startup: Vec<f64> = viewers
        .iter()
        .filter_map(|&i| {
            let peer = &sim.peers[i];
            let started = peer.viewer.as_ref()?.started_at?;
            Some((started - peer.joins_at).as_secs_f64())
        })
        .collect();
    let seeks = |i: usize| {
        sim.peers[i]
            .viewer
            .as_ref()
            .is_some_and(|v| v.seek.is_some())
    };
    let stall_of = |i: usize| Some(sim.peers[i].viewer.as_ref()?.stalled.as_secs_f64());
    let stalls: Vec<f64> = viewers
        .iter()
        .filter(|&&i| !seeks(i))
        .filter_map(|&i| stall_of(i))
        .collect();
    let seekers: Vec<usize> = viewers.iter().copied().filter(|&i| seeks(i)).collect();
    let seeker_stalls: Vec<f64> = seekers.iter().filter_map(|&i| stall_of(i)).collect();
    let seek_to_play: Vec<f64> = seekers
        .iter()
        .filter_map(|&i| {
            let seek = sim.peers[i].viewer.as_ref()?.seek.as_ref()?;
            Some(seek.to_play?.as_secs_f64())
        })
        .collect();
    let p2p_share_by_peer: Vec<f64> = if swarm_peers.len() <= 10 {
        swarm_peers
            .iter()
            .filter_map(|&i| {
                let stats = sim.peers[i].swarm.as_ref()?.stats(now);
                let total = stats.p2p_bytes + stats.http_bytes;
                Some(if total == 0 {
                    0.0
                } else {
                    stats.p2p_bytes as f64 / total as f64
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let http_only_startup_s = sim
        .peers
        .iter()
        .find(|p| p.isolated)
        .and_then(|p| Some((p.viewer.as_ref()?.started_at? - p.joins_at).as_secs_f64()));
    let http_only_stall_s = sim
        .peers
        .iter()
        .find(|p| p.isolated)
        .and_then(|p| Some(p.viewer.as_ref()?.stalled.as_secs_f64()));
    let corrupt: Vec<usize> = swarm_peers
        .iter()
        .copied()
        .filter(|&i| sim.peers[i].corrupt)
        .collect();
    let banned: std::collections::BTreeSet<usize> = sim.bans.iter().map(|(_, b)| *b).collect();
    let n = swarm_peers.len().max(1) as f64;
    let f = params.file_bytes as f64;
    let fluid_bound_s = (f / params.origin_up)
        .max(f / params.peer_down)
        .max(n * f / (params.origin_up + n * params.peer_up));
    let origin_sent = sim
        .net
        .sent
        .get(&super::net::Endpoint::Origin)
        .copied()
        .unwrap_or(0);
    let origin_reference = sim
        .peers
        .iter()
        .filter(|p| p.isolated)
        .filter_map(|p| p.swarm.as_ref().map(|s| s.stats(now).http_bytes_received))
        .sum::<u64>();
    Report {
        scenario: params.name.clone(),
        seed: params.seed,
        introductions: params.introductions,
        peers: swarm_peers.len(),
        file_bytes: params.file_bytes,
        p2p_bytes: p2p,
        http_bytes: http,
        wasted_bytes: wasted,
        offload: if p2p + http == 0 {
            0.0
        } else {
            p2p as f64 / (p2p + http) as f64
        },
        offload_ceiling: (n - 1.0) / n,
        origin_bytes_per_file: origin_sent.saturating_sub(origin_reference) as f64 / f,
        completion_s: Summary::of(completion),
        fluid_bound_s,
        startup_s: Summary::of(startup),
        stall_s: Summary::of(stalls),
        seekers: seekers.len(),
        seek_to_play_s: Summary::of(seek_to_play),
        seekers_stall_s: Summary::of(seeker_stalls),
        p2p_share_by_peer,
        http_only_startup_s,
        http_only_stall_s,
        incomplete: swarm_peers
            .iter()
            .filter(|&&i| sim.peers[i].left_at.is_none() && sim.peers[i].completed_at.is_none())
            .count(),
        corrupt_peers: corrupt.len(),
        banned_honest: banned.iter().filter(|b| !sim.peers[**b].corrupt).count(),
        banned_corrupt: banned.iter().filter(|b| sim.peers[**b].corrupt).count(),
        unverified_bytes_delivered: sim.unverified_bytes_delivered,
        origin_requests: sim.origin_requests,
        origin_fetches,
        by_peer: if sim.detail {
            sim.peer_details()
        } else {
            Vec::new()
        },
        timeline: sim.timeline.samples.clone(),
        virtual_s: sim.now.as_secs_f64(),
        wall_s: wall.as_secs_f64(),
    }
}
