//! Transfer-rate estimation and rate limiting on caller-supplied time.

use std::time::Duration;

use web_time::Instant;

/// A decaying byte count: the rate is the bytes of roughly the last
/// `window`, weighted towards the recent, per second. Exact for a steady flow.
#[derive(Debug, Clone)]
pub struct RateEstimator {
    window: f64,
    level: f64,
    last: Option<Instant>,
}

impl RateEstimator {
    /// An estimator averaging over about `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window: window.as_secs_f64().max(1e-3),
            level: 0.0,
            last: None,
        }
    }

    fn decay_to(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.level *= (-dt / self.window).exp();
        }
        self.last = Some(now);
    }

    /// Records `bytes` transferred at `now`.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        self.decay_to(now);
        self.level += bytes as f64;
    }

    /// Lets `span` pass without decay, as if it had not happened.
    fn skip(&mut self, span: Duration) {
        if let Some(last) = self.last.as_mut() {
            *last += span;
        }
    }

    /// Bytes per second as of `now`.
    pub fn rate(&self, now: Instant) -> f64 {
        let dt = self.last.map_or(0.0, |last| {
            now.saturating_duration_since(last).as_secs_f64()
        });
        self.level * (-dt / self.window).exp() / self.window
    }
}

/// A rate counted over busy time only: while idle (nothing asked of the
/// source) it neither decays nor grows, so it tells what the source
/// delivers when asked, which a demand-paced flow's idle spells would
/// otherwise hide.
///
/// It is also right from the start: a decaying average that began empty
/// reads a steady flow low for its first windows (a third of it after a
/// third of a window), which made fresh peers look too slow to trust. The
/// estimate is divided by the share of the window the busy time so far
/// fills, so a steady flow reads at its rate as soon as it is measured.
#[derive(Debug, Clone)]
pub struct BusyRate {
    inner: RateEstimator,
    total: u64,
    idle_since: Option<Instant>,
    /// When measuring began, moved on over idle spells as the estimate's
    /// clock is: the busy time so far is the clock's distance from it.
    began: Option<Instant>,
}

impl BusyRate {
    /// The shortest busy time the start-up correction divides by, so that
    /// the first block alone does not read as a burst of any speed.
    const SHORTEST_SPAN: f64 = 0.05;

    /// An estimator averaging over about `window` of busy time.
    pub fn new(window: Duration) -> Self {
        Self {
            inner: RateEstimator::new(window),
            total: 0,
            idle_since: None,
            began: None,
        }
    }

    /// Records `bytes` transferred at `now`.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        self.total = self.total.saturating_add(bytes);
        let at = self.idle_since.unwrap_or(now);
        self.began.get_or_insert(at);
        self.inner.record(at, bytes);
    }

    /// Whether anything is asked of the source as of `now`.
    pub fn set_busy(&mut self, now: Instant, busy: bool) {
        match (busy, self.idle_since) {
            (false, None) => self.idle_since = Some(now),
            (true, Some(since)) => {
                let idle = now.saturating_duration_since(since);
                self.inner.skip(idle);
                if let Some(began) = self.began.as_mut() {
                    *began += idle;
                }
                self.idle_since = None;
            }
            _ => {}
        }
        if busy {
            self.began.get_or_insert(now);
        }
    }

    /// Whether the source was ever asked for anything, so that the rate
    /// means something.
    pub fn is_measured(&self) -> bool {
        self.began.is_some()
    }

    /// Bytes recorded so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes per second of busy time, as of `now`.
    pub fn rate(&self, now: Instant) -> f64 {
        let at = self.idle_since.unwrap_or(now);
        let raw = self.inner.rate(at);
        let Some(began) = self.began else {
            return raw;
        };
        let busy = at
            .saturating_duration_since(began)
            .as_secs_f64()
            .max(Self::SHORTEST_SPAN);
        raw / (1.0 - (-busy / self.inner.window).exp())
    }
}

/// A token bucket: `rate` bytes per second, bursting up to `burst` bytes.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(bytes_per_second: u64, burst: u64) -> Self {
        Self {
            rate: bytes_per_second as f64,
            burst: burst.max(1) as f64,
            tokens: burst.max(1) as f64,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        }
        self.last = Some(now);
    }

    /// Takes `bytes` if the bucket holds them.
    pub fn try_take(&mut self, now: Instant, bytes: u64) -> bool {
        self.refill(now);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    /// When `bytes` will be available, if they are not now.
    pub fn ready_at(&self, now: Instant, bytes: u64) -> Instant {
        let have = self.tokens
            + self.last.map_or(0.0, |last| {
                now.saturating_duration_since(last).as_secs_f64() * self.rate
            });
        let missing = bytes as f64 - have.min(self.burst);
        if missing <= 0.0 || self.rate <= 0.0 {
            return now;
        }
        now + Duration::from_secs_f64(missing / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_flow_converges_to_its_rate() {
        let start = Instant::now();
        let mut rate = RateEstimator::new(Duration::from_secs(2));
        for ms in (0..20_000).step_by(10) {
            rate.record(start + Duration::from_millis(ms), 1_000);
        }
        let r = rate.rate(start + Duration::from_millis(20_000));
        assert!((r - 100_000.0).abs() < 3_000.0, "{r}");
        let later = rate.rate(start + Duration::from_secs(40));
        assert!(later < 1_000.0, "{later}");
    }

    #[test]
    fn busy_rate_ignores_idle_spells() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut busy = BusyRate::new(Duration::from_secs(2));
        let mut plain = RateEstimator::new(Duration::from_secs(2));
        // Bursts at 100 kB/s for 2 s, then 8 s with nothing asked, twice.
        for burst in [0, 10_000] {
            busy.set_busy(at(burst), true);
            for ms in (burst..burst + 2_000).step_by(10) {
                busy.record(at(ms), 1_000);
                plain.record(at(ms), 1_000);
            }
            busy.set_busy(at(burst + 2_000), false);
        }
        let idle_end = at(20_000);
        let plain_rate = plain.rate(idle_end);
        let busy_rate = busy.rate(idle_end);
        assert!(plain_rate < 5_000.0, "{plain_rate}");
        // Two 2 s bursts into a 2 s window: most of the way to 100 kB/s.
        assert!(busy_rate > 60_000.0 && busy_rate < 100_000.0, "{busy_rate}");
        // Busy again with nothing arriving: now it decays.
        busy.set_busy(idle_end, true);
        let stalled = busy.rate(at(30_000));
        assert!(stalled < 1_000.0, "{stalled}");
    }

    #[test]
    fn busy_rate_reads_a_fresh_flow_at_its_rate() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut busy = BusyRate::new(Duration::from_secs(3));
        let mut plain = RateEstimator::new(Duration::from_secs(3));
        busy.set_busy(at(0), true);
        // 100 kB/s for half a second: a sixth of the window.
        for ms in (10..=500).step_by(10) {
            busy.record(at(ms), 1_000);
            plain.record(at(ms), 1_000);
        }
        let fresh = busy.rate(at(500));
        assert!((fresh - 100_000.0).abs() < 5_000.0, "{fresh}");
        assert!(plain.rate(at(500)) < 20_000.0);
        // An idle spell changes nothing; a stall while busy still decays.
        busy.set_busy(at(500), false);
        assert!((busy.rate(at(5_000)) - fresh).abs() < 1.0);
        busy.set_busy(at(5_000), true);
        let stalled = busy.rate(at(14_000));
        assert!(stalled < 10_000.0, "{stalled}");
    }

    #[test]
    fn bucket_limits_and_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1_000, 500);
        assert!(bucket.try_take(start, 500));
        assert!(!bucket.try_take(start, 100));
        assert_eq!(
            bucket.ready_at(start, 100),
            start + Duration::from_millis(100)
        );
        assert!(bucket.try_take(start + Duration::from_millis(100), 100));
    }
}
