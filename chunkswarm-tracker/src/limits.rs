//! Token buckets: per address (requests and connection counts) and per
//! connection (its abuse budget).
//!
//! An address is an IPv4 address or an IPv6 /64 (one subscriber usually
//! holds a whole /64, so finer keys would let one client rotate addresses).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The key an address is limited under.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A token bucket's state; its rate and size are the caller's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens.
    pub(crate) fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            updated: now,
        }
    }

    /// The tokens there would be at `now`.
    fn level(&self, rate: f64, burst: f64, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }

    /// Refills at `rate` per second up to `burst`, then takes one token;
    /// false (and nothing taken) if there is none.
    pub(crate) fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens = self.level(rate, burst, now);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A connection's abuse budget ([`Limits::abuse`](crate::Limits::abuse)).
#[derive(Debug)]
pub(crate) struct AbuseBudget {
    bucket: TokenBucket,
    rate: f64,
    burst: f64,
}

impl AbuseBudget {
    pub(crate) fn new(budget: crate::RateBudget, now: Instant) -> Self {
        let burst = f64::from(budget.burst);
        Self {
            bucket: TokenBucket::full(burst, now),
            rate: budget.per_second.max(0.0),
            burst,
        }
    }

    /// Charges one abusive message; false once the budget is spent.
    pub(crate) fn charge(&mut self, now: Instant) -> bool {
        self.bucket.take(self.rate, self.burst, now)
    }
}

/// One address's bucket and open connections.
#[derive(Debug)]
pub(crate) struct AddressState {
    bucket: Mutex<TokenBucket>,
    connections: AtomicUsize,
}

/// The limiter: a map from address to its state.
#[derive(Debug)]
pub(crate) struct IpLimiter {
    addresses: Mutex<HashMap<IpAddr, Arc<AddressState>>>,
    /// Tokens per second; 0 disables rate limiting.
    rate: f64,
    burst: f64,
    max_connections: usize,
}

impl IpLimiter {
    pub(crate) fn new(per_second: u32, burst: u32, max_connections: usize) -> Self {
        Self {
            addresses: Mutex::new(HashMap::new()),
            rate: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            max_connections,
        }
    }

    /// The state of `ip`'s address, made on first use.
    pub(crate) fn address(&self, ip: IpAddr, now: Instant) -> Arc<AddressState> {
        let mut map = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(address_key(ip)).or_insert_with(|| {
            Arc::new(AddressState {
                bucket: Mutex::new(TokenBucket::full(self.burst, now)),
                connections: AtomicUsize::new(0),
            })
        }))
    }

    /// Takes one token from the address's bucket; false if it is empty.
    pub(crate) fn take(&self, state: &AddressState, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let mut bucket = state.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.take(self.rate, self.burst, now)
    }

    /// Takes a token for one request from `ip`.
    pub(crate) fn take_for(&self, ip: IpAddr, now: Instant) -> bool {
        self.rate <= 0.0 || self.take(&self.address(ip, now), now)
    }

    /// Counts a new connection from the address unless it has too many;
    /// the guard uncounts it when dropped.
    pub(crate) fn open_connection(&self, state: Arc<AddressState>) -> Option<ConnectionSlot> {
        let before = state.connections.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_connections {
            state.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnectionSlot { state })
    }

    /// Forgets addresses with no connections whose bucket is full again.
    pub(crate) fn sweep(&self, now: Instant) {
        let mut map = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, state| {
            if Arc::strong_count(state) > 1 || state.connections.load(Ordering::Acquire) > 0 {
                return true;
            }
            let bucket = state.bucket.lock().unwrap_or_else(PoisonError::into_inner);
            self.rate > 0.0 && bucket.level(self.rate, self.burst, now) < self.burst
        });
    }

    /// Number of addresses tracked.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One open connection of an address; uncounted on drop.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    state: Arc<AddressState>,
}

impl ConnectionSlot {
    /// The address's state, for rate limiting the connection's messages.
    pub(crate) fn address(&self) -> &AddressState {
        &self.state
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.state.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let limiter = IpLimiter::new(10, 5, 2);
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let state = limiter.address(ip, t0);
        assert_eq!((0..10).filter(|_| limiter.take(&state, t0)).count(), 5);
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!((0..10).filter(|_| limiter.take(&state, t1)).count(), 3);
    }

    #[test]
    fn an_abuse_budget_is_a_rate_not_a_lifetime_count() {
        let t0 = Instant::now();
        let budget = crate::RateBudget {
            per_second: 2.0,
            burst: 4,
        };
        let mut abuse = AbuseBudget::new(budget, t0);
        assert_eq!((0..10).filter(|_| abuse.charge(t0)).count(), 4);
        // Two per second: over an hour, a slow trickle never runs dry.
        let mut now = t0;
        for _ in 0..7200 {
            now += Duration::from_millis(500);
            assert!(abuse.charge(now));
        }
        assert!(!abuse.charge(now));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let limiter = IpLimiter::new(0, 1, 2);
        let now = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..1000).all(|_| limiter.take_for(ip, now)));
    }

    #[test]
    fn connections_are_capped_and_released() {
        let limiter = IpLimiter::new(10, 5, 2);
        let now = Instant::now();
        let ip: IpAddr = "::1".parse().unwrap();
        let a = limiter.open_connection(limiter.address(ip, now)).unwrap();
        let _b = limiter.open_connection(limiter.address(ip, now)).unwrap();
        assert!(limiter.open_connection(limiter.address(ip, now)).is_none());
        drop(a);
        assert!(limiter.open_connection(limiter.address(ip, now)).is_some());
    }

    #[test]
    fn ipv6_is_keyed_by_slash_64_and_mapped_v4_by_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn sweep_forgets_idle_refilled_addresses() {
        let limiter = IpLimiter::new(100, 5, 2);
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(limiter.take_for(ip, t0));
        limiter.sweep(t0);
        assert_eq!(limiter.tracked(), 1);
        limiter.sweep(t0 + Duration::from_secs(1));
        assert_eq!(limiter.tracked(), 0);
    }
}
