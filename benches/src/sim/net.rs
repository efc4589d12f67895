//! The simulated network: directed links with a byte queue, per-node upload
//! and download capacity shared fairly each step, and a propagation delay.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::flow_trace::FlowTrace;

/// Bytes queued on a link above which its sender is told to stop sending blocks.
pub const HIGH_WATER: usize = 256 * 1024;
/// Bytes queued below which a stopped sender is told to go on.
pub const LOW_WATER: usize = 64 * 1024;

/// Who is at either end of a flow of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A peer, by index.
    Peer(usize),
    /// The HTTP origin.
    Origin,
}

/// A one-way byte stream between two endpoints.
#[derive(Debug, Default)]
pub struct Link {
    queue: VecDeque<Bytes>,
    queued: usize,
    in_flight: VecDeque<(Duration, Bytes)>,
    /// The fraction of a byte this link was granted but could not send: a
    /// share below one byte per step (a link's last byte behind a saturated
    /// receiver) adds up until a whole byte goes.
    credit: f64,
    /// The sender was told the link is full.
    pub blocked: bool,
}

impl Link {
    /// Appends bytes for transmission.
    pub fn push(&mut self, data: Bytes) {
        self.queued += data.len();
        self.queue.push_back(data);
    }

    /// Bytes waiting to be transmitted.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Transmits up to `budget` bytes, which arrive `latency` after `now`.
    fn transmit(&mut self, now: Duration, latency: Duration, mut budget: usize) -> usize {
        let mut sent = 0;
        while budget > 0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            let chunk = if front.len() <= budget {
                self.queue.pop_front().unwrap_or_default()
            } else {
                front.split_to(budget)
            };
            budget -= chunk.len();
            sent += chunk.len();
            self.queued -= chunk.len();
            self.in_flight.push_back((now + latency, chunk));
        }
        sent
    }

    /// Bytes whose propagation finished by `now`.
    pub fn arrived(&mut self, now: Duration) -> Vec<Bytes> {
        let mut out = Vec::new();
        while self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, chunk)) = self.in_flight.pop_front() {
                out.push(chunk);
            }
        }
        out
    }

    /// Whether nothing is queued or propagating.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }
}

/// All links, keyed by (from, to), and every endpoint's capacity.
#[derive(Debug, Default)]
pub struct Network {
    /// Links by (from, to, stream): stream 0 is a peer connection, others
    /// are HTTP responses.
    pub links: BTreeMap<(Endpoint, Endpoint, u64), Link>,
    /// Upload capacity in bytes per second.
    pub upload: BTreeMap<Endpoint, f64>,
    /// Download capacity in bytes per second.
    pub download: BTreeMap<Endpoint, f64>,
    /// One-way latency of every link.
    pub latency: Duration,
    /// Bytes each endpoint has sent.
    pub sent: BTreeMap<Endpoint, u64>,
    /// Bytes by sender, receiver and interval, when traced (`--trace-flows`).
    pub(super) flows: Option<FlowTrace>,
}

impl Network {
    /// Moves one step of `dt` worth of bytes: each sender splits its upload
    /// fairly among its busy links (water-filling), then each receiver caps
    /// what it takes at its download capacity, scaling senders down evenly.
    pub fn step(&mut self, now: Duration, dt: Duration) {
        let secs = dt.as_secs_f64();
        type Key = (Endpoint, Endpoint, u64);
        let mut offers: BTreeMap<Key, f64> = BTreeMap::new();
        let mut by_sender: BTreeMap<Endpoint, Vec<(Key, f64)>> = BTreeMap::new();
        for (key, link) in &self.links {
            if link.queued > 0 {
                by_sender
                    .entry(key.0)
                    .or_default()
                    .push((*key, link.queued as f64));
            }
        }
        for (sender, mut demands) in by_sender {
            let budget = self.upload.get(&sender).copied().unwrap_or(0.0) * secs;
            for (key, share) in water_fill(budget, &mut demands) {
                offers.insert(key, share);
            }
        }
        let mut incoming: BTreeMap<Endpoint, f64> = BTreeMap::new();
        for (key, offer) in &offers {
            *incoming.entry(key.1).or_default() += offer;
        }
        for (key, offer) in offers {
            let capacity = self.download.get(&key.1).copied().unwrap_or(0.0) * secs;
            let total = incoming.get(&key.1).copied().unwrap_or(0.0);
            let scale = if total > capacity && total > 0.0 {
                capacity / total
            } else {
                1.0
            };
            if let Some(link) = self.links.get_mut(&key) {
                link.credit += offer * scale;
                let bytes = link.credit.floor();
                link.credit -= bytes;
                let sent = link.transmit(now, self.latency, bytes as usize);
                if link.queued == 0 {
                    link.credit = 0.0;
                }
                *self.sent.entry(key.0).or_default() += sent as u64;
                if let Some(flows) = self.flows.as_mut() {
                    flows.record(now, key.0, key.1, sent as u64);
                }
            }
        }
    }
}

/// Splits `budget` among demands max-min fairly.
fn water_fill<K: Copy>(mut budget: f64, demands: &mut [(K, f64)]) -> Vec<(K, f64)> {
    demands.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut out = Vec::with_capacity(demands.len());
    let mut left = demands.len();
    for (key, demand) in demands.iter() {
        let fair = budget / left as f64;
        let take = demand.min(fair);
        out.push((*key, take));
        budget -= take;
        left -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_filling_is_max_min_fair() {
        let mut demands = vec![(0, 10.0), (1, 100.0), (2, 100.0)];
        let shares = water_fill(90.0, &mut demands);
        assert_eq!(shares, vec![(0, 10.0), (1, 40.0), (2, 40.0)]);
    }

    #[test]
    fn a_last_byte_behind_a_saturated_receiver_still_goes() {
        let (a, b, c) = (Endpoint::Peer(0), Endpoint::Peer(1), Endpoint::Peer(2));
        let mut net = Network {
            latency: Duration::ZERO,
            ..Network::default()
        };
        for (endpoint, rate) in [(a, 1000.0), (b, 1000.0), (c, 0.0)] {
            net.upload.insert(endpoint, rate);
            net.download.insert(endpoint, 0.0);
        }
        net.download.insert(c, 1000.0);
        let mut busy = Link::default();
        busy.push(Bytes::from(vec![0; 100_000]));
        let mut last = Link::default();
        last.push(Bytes::from_static(b"x"));
        net.links.insert((a, c, 0), busy);
        net.links.insert((b, c, 0), last);
        let dt = Duration::from_millis(10);
        for step in 1..=10 {
            net.step(dt * step, dt);
        }
        // Offered 1 byte per step, the lone byte is scaled to under one
        // byte by the saturated receiver every step; it must still arrive.
        assert_eq!(net.links[&(b, c, 0)].queued(), 0);
    }

    #[test]
    fn link_delivers_after_latency_in_order() {
        let mut link = Link::default();
        link.push(Bytes::from_static(b"hello world"));
        assert_eq!(
            link.transmit(Duration::ZERO, Duration::from_millis(10), 5),
            5
        );
        assert!(link.arrived(Duration::from_millis(9)).is_empty());
        assert_eq!(
            link.arrived(Duration::from_millis(10)),
            vec![Bytes::from_static(b"hello")]
        );
        assert_eq!(link.queued(), 6);
    }
}
