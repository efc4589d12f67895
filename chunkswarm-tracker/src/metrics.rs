//! Counters, and their Prometheus text form at `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::ClusterState;

/// Why the tracker refused or dropped something; one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// A message that did not parse or was invalid.
    InvalidMessage,
    /// A message over the size limit.
    MessageTooLarge,
    /// A `peer_id` owned by another connection.
    PeerIdTaken,
    /// Too many peer ids on one connection.
    TooManyPeerIds,
    /// Too many swarms on one connection, or in the tracker.
    TooManySwarms,
    /// An answer to no outstanding offer.
    UnsolicitedAnswer,
    /// An answer to an expired offer.
    ExpiredAnswer,
    /// A message for a peer that is not connected.
    UnknownPeer,
    /// A message lost because its recipient's queue was full.
    SlowPeer,
    /// A bad piece report, or one past the connection's bitfield budget.
    BadPieces,
    /// A piece report for a swarm the peer is not (or no longer) in.
    NotInSwarm,
    /// An address over its rate.
    RateLimited,
    /// An address over its connection limit, or the tracker full.
    TooManyConnections,
    /// A connection closed for sending nothing.
    Idle,
    /// A connection closed for spending its abuse budget.
    TooManyErrors,
    /// A connection closed because its client took none of what was
    /// written to it for too long.
    WriteTimeout,
    /// An HTTP path that tried to leave the media library.
    BadPath,
}

impl Rejection {
    const ALL: [Rejection; 17] = [
        Self::InvalidMessage,
        Self::MessageTooLarge,
        Self::PeerIdTaken,
        Self::TooManyPeerIds,
        Self::TooManySwarms,
        Self::UnsolicitedAnswer,
        Self::ExpiredAnswer,
        Self::UnknownPeer,
        Self::SlowPeer,
        Self::BadPieces,
        Self::NotInSwarm,
        Self::RateLimited,
        Self::TooManyConnections,
        Self::Idle,
        Self::TooManyErrors,
        Self::WriteTimeout,
        Self::BadPath,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::InvalidMessage => "invalid_message",
            Self::MessageTooLarge => "message_too_large",
            Self::PeerIdTaken => "peer_id_taken",
            Self::TooManyPeerIds => "too_many_peer_ids",
            Self::TooManySwarms => "too_many_swarms",
            Self::UnsolicitedAnswer => "unsolicited_answer",
            Self::ExpiredAnswer => "expired_answer",
            Self::UnknownPeer => "unknown_peer",
            Self::SlowPeer => "slow_peer",
            Self::BadPieces => "bad_pieces",
            Self::NotInSwarm => "not_in_swarm",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::Idle => "idle",
            Self::TooManyErrors => "too_many_errors",
            Self::WriteTimeout => "write_timeout",
            Self::BadPath => "bad_path",
        }
    }
}

/// The tracker's counters. Gauges that the registry knows (swarms, peers)
/// are read from it when rendering.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) announces: AtomicU64,
    /// Offers and answers sent to other nodes of the cluster.
    pub(crate) relays_sent: AtomicU64,
    /// Offers and answers other nodes sent, delivered or not.
    pub(crate) relays_received: AtomicU64,
    pub(crate) scrapes: AtomicU64,
    pub(crate) offers_forwarded: AtomicU64,
    pub(crate) answers_relayed: AtomicU64,
    pub(crate) origin_bytes: AtomicU64,
    pub(crate) origin_requests: AtomicU64,
    pub(crate) torrents_built: AtomicU64,
    rejections: [AtomicU64; Rejection::ALL.len()],
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Counts one rejection.
    pub(crate) fn reject(&self, why: Rejection) {
        if let Some(counter) = self.rejections.get(why as usize) {
            add(counter, 1);
        }
    }

    /// The Prometheus text exposition, with the registry's gauges.
    pub(crate) fn render(&self, swarms: usize, peers: usize, cluster: ClusterState) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP chunkswarm_tracker_{name} {help}");
            let _ = writeln!(out, "# TYPE chunkswarm_tracker_{name} {kind}");
            let _ = writeln!(out, "chunkswarm_tracker_{name} {value}");
        };
        one(
            "connections",
            "gauge",
            "Open WebSocket connections.",
            get(&self.connections_open),
        );
        one(
            "connections_total",
            "counter",
            "WebSocket connections accepted.",
            get(&self.connections_total),
        );
        one(
            "swarms",
            "gauge",
            "Swarms with at least one peer.",
            swarms as u64,
        );
        one("peers", "gauge", "Peers over all swarms.", peers as u64);
        if cluster != ClusterState::Alone {
            one(
                "cluster_connected",
                "gauge",
                "1 while Redis is reachable and swarms are cluster-wide, 0 while this node serves its own peers only.",
                u64::from(cluster == ClusterState::Connected),
            );
            one(
                "cluster_relays_sent_total",
                "counter",
                "Offers and answers sent to peers on other nodes.",
                get(&self.relays_sent),
            );
            one(
                "cluster_relays_received_total",
                "counter",
                "Offers and answers other nodes sent to peers here.",
                get(&self.relays_received),
            );
        }
        one(
            "messages_received_total",
            "counter",
            "WebSocket messages received.",
            get(&self.messages_received),
        );
        one(
            "messages_sent_total",
            "counter",
            "WebSocket messages sent.",
            get(&self.messages_sent),
        );
        one(
            "announces_total",
            "counter",
            "Announces handled.",
            get(&self.announces),
        );
        one(
            "scrapes_total",
            "counter",
            "Scrapes handled.",
            get(&self.scrapes),
        );
        one(
            "offers_relayed_total",
            "counter",
            "Offers forwarded to peers.",
            get(&self.offers_forwarded),
        );
        one(
            "answers_relayed_total",
            "counter",
            "Answers relayed to offerers.",
            get(&self.answers_relayed),
        );
        one(
            "origin_requests_total",
            "counter",
            "HTTP origin requests.",
            get(&self.origin_requests),
        );
        one(
            "origin_bytes_total",
            "counter",
            "Media bytes sent by the HTTP origin.",
            get(&self.origin_bytes),
        );
        one(
            "torrents_built_total",
            "counter",
            "Torrents hashed from the library.",
            get(&self.torrents_built),
        );
        let name = "chunkswarm_tracker_rejections_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests refused, messages dropped and connections closed, by reason."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for why in Rejection::ALL {
            let value = self.rejections.get(why as usize).map_or(0, get);
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {value}", why.label());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_reason_once() {
        let metrics = Metrics::default();
        metrics.reject(Rejection::BadPath);
        metrics.reject(Rejection::BadPath);
        let text = metrics.render(3, 7, ClusterState::Alone);
        assert!(text.contains("chunkswarm_tracker_swarms 3\n"));
        assert!(text.contains("chunkswarm_tracker_rejections_total{reason=\"bad_path\"} 2\n"));
        for why in Rejection::ALL {
            assert_eq!(text.matches(&format!("\"{}\"", why.label())).count(), 1);
        }
    }
}
