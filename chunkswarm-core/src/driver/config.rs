//! The driver's settings.

use std::time::Duration;

use super::signal::Id20;
use crate::rng::SeededRng;

/// How the driver uses the tracker and makes connections.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverConfig {
    /// Our peer id, on the tracker and in handshakes. Every
    /// `DriverConfig::default()` draws its own, so peers made with defaults
    /// meet each other; [`DriverConfig::seeded`] gives a reproducible one.
    pub peer_id: Id20,
    /// Seeds offer ids and each torrent's engine (whose own
    /// [`SwarmConfig::rng_seed`](crate::swarm::SwarmConfig::rng_seed) the
    /// driver replaces).
    pub rng_seed: u64,
    /// Offers made per announce (WebTorrent clients send up to 10).
    pub offers_per_announce: usize,
    /// No offers are made while this many connections are open, except
    /// after a seek: when the playhead jumps by more than a piece, the
    /// torrent announces at once (at most every 5 s) with a full set of
    /// offers, up to two sets beyond this limit, so that the tracker, which
    /// introduces by the pieces around the playhead, finds it holders of
    /// its new position.
    pub max_connections: usize,
    /// How long an offer waits for its answer.
    pub offer_ttl: Duration,
    /// How long a connection may take to open once answered.
    pub connect_timeout: Duration,
    /// Re-announce interval until the tracker names one.
    pub announce_interval: Duration,
    /// Re-announce interval of an incomplete torrent without connections,
    /// so a lone peer finds newcomers sooner.
    pub lonely_interval: Duration,
}

/// A different seed on every call: the standard library's per-process
/// random hash keys, a call counter and the clock. Not for cryptography; for
/// ids that must not repeat (two peers in one process, two processes).
#[allow(
    clippy::disallowed_methods,
    reason = "settings, not the state machine: a fresh seed mixes the clock in"
)]
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    let since_epoch = web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since_epoch.as_nanos());
    hasher.finish()
}

impl Default for DriverConfig {
    /// Sound settings with a peer id and RNG seed of their own: two
    /// defaults never share a peer id (the seed mixes the standard library's
    /// per-process random hash keys, a call counter and the clock).
    fn default() -> Self {
        Self::seeded(fresh_seed())
    }
}

impl DriverConfig {
    /// The default settings with a peer id (`-CS0001-` and 12 letters or
    /// digits) and RNG drawn from `seed`; the same seed gives the same id.
    pub fn seeded(seed: u64) -> Self {
        const ALPHABET: &[u8; 62] =
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut rng = SeededRng::new(seed);
        let mut peer_id = *b"-CS0001-000000000000";
        for byte in &mut peer_id[8..] {
            *byte = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
        }
        Self {
            peer_id,
            rng_seed: seed,
            offers_per_announce: 5,
            max_connections: 32,
            offer_ttl: Duration::from_secs(50),
            connect_timeout: Duration::from_secs(20),
            announce_interval: Duration::from_secs(120),
            lonely_interval: Duration::from_secs(15),
        }
    }
}
