//! The tracker link's policy, one for every adapter: when to connect again
//! after the tracker dropped or refused the connection, and what becomes of
//! messages the driver sends meanwhile.
//!
//! Sans-IO like the rest of the driver: the adapter owns the socket and the
//! timer, tells a [`Reconnect`] what happened with `now` passed in, and does
//! what it answers.
//!
//! - Waits double from [`Backoff::FIRST`] up to [`Backoff::MAX`], each
//!   shortened by up to a quarter at random (from a seed the adapter gives),
//!   so clients that lost one tracker together do not all return at once.
//!   A connection that opens resets them.
//! - Every failed attempt or lost connection is reported to the driver
//!   ([`SignalIn::Disconnected`] with the cause), every connection that
//!   opens too ([`SignalIn::Reconnected`]): the tracker knows nothing of a
//!   new socket, so the driver announces every torrent anew.
//! - Messages are sent only while the connection is open; the adapter drops
//!   those sent meanwhile ([`Reconnect::is_open`]). Nothing is lost by that:
//!   the driver makes no offers while the tracker is down, and its
//!   re-announce on [`SignalIn::Reconnected`] replaces any announce dropped.

use std::time::Duration;

use web_time::Instant;

use super::io::TrackerError;
use super::signal::SignalIn;
use crate::rng::SeededRng;

/// Doubling waits with jitter: how long to wait before the next attempt
/// after each consecutive failure.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
    rng: SeededRng,
}

impl Backoff {
    /// The wait after the first failure (before jitter).
    pub const FIRST: Duration = Duration::from_millis(500);
    /// The longest wait.
    pub const MAX: Duration = Duration::from_secs(30);
    /// The largest share of a wait that jitter takes off, in percent.
    pub const JITTER_PERCENT: u32 = 25;

    /// Waits from [`FIRST`](Self::FIRST) to [`MAX`](Self::MAX), with jitter
    /// drawn from a generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_limits(Self::FIRST, Self::MAX, seed)
    }

    /// Waits from `first` doubling up to `max` (at least `first`).
    pub fn with_limits(first: Duration, max: Duration, seed: u64) -> Self {
        Self {
            first,
            max: max.max(first),
            failures: 0,
            rng: SeededRng::new(seed),
        }
    }

    /// Counts a failure; returns how long to wait before the next attempt:
    /// `first * 2^(failures - 1)`, capped at the maximum, less up to
    /// [`JITTER_PERCENT`](Self::JITTER_PERCENT) of it.
    pub fn failed(&mut self) -> Duration {
        let doublings = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        let full = self
            .first
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |wait| wait.min(self.max));
        let jitter_ns = full.as_nanos() * u128::from(Self::JITTER_PERCENT) / 100;
        let cut = u64::try_from(jitter_ns).map_or(0, |ns| self.rng.below(ns + 1));
        full.saturating_sub(Duration::from_nanos(cut))
    }

    /// A connection opened: the next failure waits the first wait again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Where a tracker link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// An attempt to connect is under way.
    Connecting,
    /// Connected: messages go out.
    Open,
    /// Waiting to try again at `until`.
    Waiting {
        /// When the next attempt is due.
        until: Instant,
    },
}

/// One tracker link's reconnection policy; see the [module docs](self).
///
/// The adapter calls [`opened`](Self::opened) when a connection opens,
/// [`failed`](Self::failed) when an attempt fails or an open connection is
/// lost, and [`retry_due`](Self::retry_due) when the wait it was given has
/// passed, then connects again if that says so. It passes what `opened` and
/// `failed` return on to the driver.
#[derive(Debug, Clone)]
pub struct Reconnect {
    backoff: Backoff,
    state: LinkState,
}

impl Reconnect {
    /// A link about to make its first attempt, with the default
    /// [`Backoff`] seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_backoff(Backoff::new(seed))
    }

    /// A link about to make its first attempt, waiting as `backoff` says
    /// between attempts.
    pub fn with_backoff(backoff: Backoff) -> Self {
        Self {
            backoff,
            state: LinkState::Connecting,
        }
    }

    /// Where the link stands.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// Whether messages go out now; the adapter drops those sent otherwise.
    pub fn is_open(&self) -> bool {
        self.state == LinkState::Open
    }

    /// A connection opened. Returns what to tell the driver
    /// ([`SignalIn::Reconnected`]: announce everything anew).
    #[must_use]
    pub fn opened(&mut self) -> SignalIn {
        self.backoff.succeeded();
        self.state = LinkState::Open;
        SignalIn::Reconnected
    }

    /// An attempt failed or the open connection was lost, for `error`.
    /// Returns what to tell the driver ([`SignalIn::Disconnected`]) and when
    /// to try again.
    #[must_use]
    pub fn failed(&mut self, now: Instant, error: TrackerError) -> (SignalIn, Instant) {
        let until = now + self.backoff.failed();
        self.state = LinkState::Waiting { until };
        (SignalIn::Disconnected(error), until)
    }

    /// Whether to start an attempt now: true once the wait has passed (the
    /// link is then [`Connecting`](LinkState::Connecting)), false while
    /// waiting, connecting or open.
    pub fn retry_due(&mut self, now: Instant) -> bool {
        match self.state {
            LinkState::Waiting { until } if now >= until => {
                self.state = LinkState::Connecting;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> TrackerError {
        TrackerError::Lost {
            url: "ws://127.0.0.1:1/announce".into(),
        }
    }

    #[test]
    fn waits_double_within_their_jitter_up_to_the_cap() {
        let mut backoff = Backoff::new(7);
        let mut full = Backoff::FIRST;
        for _ in 0..12 {
            let wait = backoff.failed();
            let least = full * (100 - Backoff::JITTER_PERCENT) / 100;
            assert!(
                least <= wait && wait <= full,
                "{wait:?} outside {least:?}..={full:?}"
            );
            full = (full * 2).min(Backoff::MAX);
        }
        assert_eq!(full, Backoff::MAX, "the cap was reached");
        assert_eq!(backoff.failures(), 12);
    }

    #[test]
    fn a_success_starts_the_waits_again() {
        let mut backoff = Backoff::with_limits(Duration::from_secs(1), Duration::from_secs(8), 3);
        for _ in 0..5 {
            backoff.failed();
        }
        assert!(backoff.failed() >= Duration::from_secs(6));
        backoff.succeeded();
        assert_eq!(backoff.failures(), 0);
        assert!(backoff.failed() <= Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_clients_and_a_seed_replays_it() {
        let waits = |seed| {
            let mut backoff = Backoff::new(seed);
            (0..6).map(|_| backoff.failed()).collect::<Vec<_>>()
        };
        assert_eq!(waits(1), waits(1));
        let firsts: std::collections::BTreeSet<Duration> =
            (0..20).map(|seed| waits(seed)[0]).collect();
        assert!(
            firsts.len() > 10,
            "20 clients, {} distinct waits",
            firsts.len()
        );
    }

    #[test]
    fn huge_limits_neither_overflow_nor_panic() {
        let mut backoff = Backoff::with_limits(Duration::MAX / 2, Duration::MAX, 0);
        for _ in 0..40 {
            assert!(backoff.failed() <= Duration::MAX);
        }
        let mut zero = Backoff::with_limits(Duration::ZERO, Duration::ZERO, 0);
        assert_eq!(zero.failed(), Duration::ZERO);
    }

    #[test]
    fn a_link_reports_each_failure_and_reopens_after_its_wait() {
        let start = Instant::now();
        let mut link = Reconnect::new(5);
        assert_eq!(link.state(), LinkState::Connecting);
        assert!(!link.is_open(), "nothing goes out before the first open");
        assert!(!link.retry_due(start));

        let (told, until) = link.failed(start, lost());
        assert_eq!(told, SignalIn::Disconnected(lost()));
        assert!(until > start && until <= start + Backoff::FIRST);
        assert!(!link.retry_due(until - Duration::from_millis(1)));
        assert!(link.retry_due(until));
        assert_eq!(link.state(), LinkState::Connecting);
        assert!(!link.retry_due(until), "one attempt per wait");

        let (_, second) = link.failed(until, lost());
        assert!(second - until > Backoff::FIRST * 3 / 2, "the wait doubled");
        assert!(link.retry_due(second));
        assert_eq!(link.opened(), SignalIn::Reconnected);
        assert!(link.is_open());
        assert!(
            !link.retry_due(second + Backoff::MAX),
            "no attempt while open"
        );

        // Lost after opening: back to the first wait.
        let (_, third) = link.failed(second, lost());
        assert!(third - second <= Backoff::FIRST);
        assert!(!link.is_open());
    }
}
