//! The optional detail of a run (`swarm-sim --detail`): every peer's own
//! figures, and the swarm sampled every few seconds, to see where the origin
//! was paid and whether peers' upload sat idle meanwhile.

use std::time::Duration;

use serde::Serialize;

use super::Simulation;
use super::net::Endpoint;
use super::report::OriginFetchCounts;

/// How often the timeline is sampled, in virtual time.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// One peer of the swarm (the HTTP-only reference viewer included, marked).
#[derive(Debug, Clone, Serialize)]
pub struct PeerDetail {
    /// Index in join order.
    pub peer: usize,
    /// Talks only to the origin.
    pub http_only: bool,
    /// When it joined.
    pub joined_s: f64,
    /// Join to first playable piece, for viewers.
    pub startup_s: Option<f64>,
    /// Total playback stall, for viewers.
    pub stall_s: Option<f64>,
    /// The viewer seeks once during the run (see `Params::seek_fraction`).
    pub seeks: bool,
    /// Join to complete.
    pub completion_s: Option<f64>,
    /// Of its verified bytes, the share from peers.
    pub p2p_share: Option<f64>,
    /// Bytes it sent to peers.
    pub uploaded_bytes: u64,
    /// Its origin fetches by reason (none for a peer that left).
    pub origin_fetches: OriginFetchCounts,
}

/// The swarm over one sampling interval.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// End of the interval.
    pub t_s: f64,
    /// Peers present (the reference viewer excluded).
    pub present: usize,
    /// Of them, those still downloading.
    pub downloading: usize,
    /// Of them, those holding no verified piece yet, whose upload can only
    /// sit idle: in a flash crowd, the start-up loss.
    pub without_pieces: usize,
    /// Bytes present peers sent to peers over the interval, as a share of
    /// their upload capacity.
    pub peer_upload_use: f64,
    /// Origin bytes per second over the interval (the reference viewer's
    /// included).
    pub origin_bytes_per_s: f64,
}

/// Running totals between samples.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    pub(super) samples: Vec<Sample>,
    last_peer_sent: u64,
    last_origin_sent: u64,
}

impl Simulation {
    /// Takes a sample when one is due.
    pub(super) fn sample_timeline(&mut self) {
        let every = SAMPLE_EVERY.as_millis();
        if !self.detail || self.now.as_millis() % every != 0 {
            return;
        }
        let present: Vec<usize> = (0..self.peers.len())
            .filter(|&i| self.is_present(i) && !self.peers[i].isolated)
            .collect();
        let sent_by = |e: Endpoint| self.net.sent.get(&e).copied().unwrap_or(0);
        // Bytes ever sent by every swarm peer, present or gone, so that the
        // interval's difference is right across departures.
        let peer_sent: u64 = (0..self.peers.len())
            .filter(|&i| !self.peers[i].isolated)
            .map(|i| sent_by(Endpoint::Peer(i)))
            .sum();
        let origin_sent = sent_by(Endpoint::Origin);
        let secs = SAMPLE_EVERY.as_secs_f64();
        let capacity = present.len() as f64 * self.params.peer_up * secs;
        let at = self.instant();
        let without_pieces = present
            .iter()
            .filter_map(|&i| self.peers[i].swarm.as_ref())
            .filter(|swarm| swarm.stats(at).pieces_verified == 0)
            .count();
        let timeline = &mut self.timeline;
        let sample = Sample {
            t_s: self.now.as_secs_f64(),
            present: present.len(),
            downloading: present
                .iter()
                .filter(|&&i| self.peers[i].completed_at.is_none())
                .count(),
            without_pieces,
            peer_upload_use: if capacity > 0.0 {
                (peer_sent - timeline.last_peer_sent) as f64 / capacity
            } else {
                0.0
            },
            origin_bytes_per_s: (origin_sent - timeline.last_origin_sent) as f64 / secs,
        };
        timeline.last_peer_sent = peer_sent;
        timeline.last_origin_sent = origin_sent;
        timeline.samples.push(sample);
    }

    /// Every peer's figures, in join order.
    pub(super) fn peer_details(&self) -> Vec<PeerDetail> {
        let now = self.instant();
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.swarm.is_some() || p.left_at.is_some())
            .map(|(i, peer)| {
                let stats = peer.swarm.as_ref().map(|s| s.stats(now));
                let mut origin_fetches = OriginFetchCounts::default();
                if let Some(stats) = &stats {
                    origin_fetches.add(stats.origin_fetches);
                }
                let since_join = |at: Duration| (at - peer.joins_at).as_secs_f64();
                PeerDetail {
                    peer: i,
                    http_only: peer.isolated,
                    joined_s: peer.joins_at.as_secs_f64(),
                    startup_s: peer
                        .viewer
                        .as_ref()
                        .and_then(|v| v.started_at)
                        .map(since_join),
                    stall_s: peer.viewer.as_ref().map(|v| v.stalled.as_secs_f64()),
                    seeks: peer.viewer.as_ref().is_some_and(|v| v.seek.is_some()),
                    completion_s: peer.completed_at.map(since_join),
                    p2p_share: stats.as_ref().and_then(|s| {
                        let total = s.p2p_bytes + s.http_bytes;
                        (total > 0).then(|| s.p2p_bytes as f64 / total as f64)
                    }),
                    uploaded_bytes: self.net.sent.get(&Endpoint::Peer(i)).copied().unwrap_or(0),
                    origin_fetches,
                }
            })
            .collect()
    }
}
