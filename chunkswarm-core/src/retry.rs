//! Retry policy: how long to wait for a source, how long to avoid it after it
//! fails, and when to stop asking peers and pay the HTTP origin.
//!
//! Network faults never stop a download: a timed-out or rejected request puts
//! its blocks back to be asked of another source, the slow source is backed
//! off, and a piece that peers failed to deliver often enough goes to HTTP.

use std::time::Duration;

/// What the swarm knows about a source when it asks the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceStats {
    /// Measured download rate from it, bytes per second (0 if unknown).
    pub rate: f64,
    /// Measured request round trip, if any request has completed.
    pub rtt: Option<Duration>,
    /// Requests outstanding to it.
    pub queued_blocks: u32,
    /// Consecutive failures (timeouts, rejects, hash failures it took part in).
    pub failures: u32,
}

/// Decides timeouts, backoff and the move to HTTP.
pub trait RetryPolicy {
    /// How long after a request, with no block arriving from that peer, it
    /// counts as failed.
    fn request_timeout(&self, peer: &SourceStats, block_len: u32) -> Duration;

    /// How long to stop requesting from a source after its `failures`-th
    /// consecutive failure.
    fn backoff(&self, failures: u32) -> Duration;

    /// Whether a piece whose peer attempts have failed `attempts` times
    /// should now be fetched from the HTTP origin.
    fn use_http_after(&self, attempts: u32) -> bool;

    /// How long an HTTP range request may take before it is cancelled and retried.
    fn http_timeout(&self, range_len: u64) -> Duration;
}

/// The default policy.
///
/// A request times out after `base_timeout` plus four round trips plus the
/// time to drain the peer's queue at its measured rate, capped at
/// `max_timeout`. Backoff doubles from `base_backoff` up to `max_backoff`.
/// After `max_peer_attempts` failed peer attempts a piece goes to HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardRetry {
    /// Least time allowed for any request.
    pub base_timeout: Duration,
    /// Most time allowed for any request.
    pub max_timeout: Duration,
    /// First backoff after a failure.
    pub base_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Failed peer attempts at a piece before HTTP takes it.
    pub max_peer_attempts: u32,
    /// HTTP throughput assumed when sizing HTTP timeouts, bytes per second.
    pub min_http_rate: f64,
}

impl Default for StandardRetry {
    fn default() -> Self {
        Self {
            base_timeout: Duration::from_secs(2),
            max_timeout: Duration::from_secs(30),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_peer_attempts: 3,
            min_http_rate: 64.0 * 1024.0,
        }
    }
}

impl RetryPolicy for StandardRetry {
    fn request_timeout(&self, peer: &SourceStats, block_len: u32) -> Duration {
        let round_trips = peer.rtt.map_or(Duration::ZERO, |rtt| rtt * 4);
        let drain = if peer.rate > 0.0 {
            let bytes = f64::from(peer.queued_blocks.max(1)) * f64::from(block_len);
            Duration::from_secs_f64((bytes / peer.rate).min(self.max_timeout.as_secs_f64()))
        } else {
            Duration::ZERO
        };
        (self.base_timeout + round_trips + drain).min(self.max_timeout)
    }

    fn backoff(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(16);
        (self.base_backoff * (1u32 << shift)).min(self.max_backoff)
    }

    fn use_http_after(&self, attempts: u32) -> bool {
        attempts >= self.max_peer_attempts
    }

    fn http_timeout(&self, range_len: u64) -> Duration {
        let transfer = range_len as f64 / self.min_http_rate.max(1.0);
        (self.base_timeout * 2 + Duration::from_secs_f64(transfer)).min(self.max_timeout * 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_with_queue_and_rtt_and_stay_capped() {
        let policy = StandardRetry::default();
        let idle = SourceStats {
            rate: 0.0,
            rtt: None,
            queued_blocks: 0,
            failures: 0,
        };
        assert_eq!(policy.request_timeout(&idle, 16384), Duration::from_secs(2));
        let slow = SourceStats {
            rate: 16384.0,
            rtt: Some(Duration::from_millis(100)),
            queued_blocks: 4,
            ..idle
        };
        assert_eq!(
            policy.request_timeout(&slow, 16384),
            Duration::from_millis(2000 + 400 + 4000)
        );
        let hopeless = SourceStats { rate: 1.0, ..slow };
        assert_eq!(policy.request_timeout(&hopeless, 16384), policy.max_timeout);
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let policy = StandardRetry::default();
        let steps: Vec<u64> = (1..=8).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(steps, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert!(!policy.use_http_after(2));
        assert!(policy.use_http_after(3));
    }
}
