//! `swarm-sim --trace-flows`: at the end of the run, one JSON line on
//! standard error for every sender, receiver and 10 s of virtual time, with
//! the bytes the sender put on the wire to that receiver. It shows who feeds
//! whom: which viewers the first ones serve, and which take everything from
//! the origin while their neighbours' upload goes elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::net::Endpoint;

/// The length of one tally.
const INTERVAL: Duration = Duration::from_secs(10);

/// Bytes sent, by sender, receiver and interval.
#[derive(Debug, Default)]
pub(super) struct FlowTrace {
    sent: BTreeMap<(u64, Endpoint, Endpoint), u64>,
}

/// One sender's bytes to one receiver over one interval.
#[derive(Debug, Serialize)]
struct Line {
    /// Virtual seconds at the interval's start.
    t_s: u64,
    /// The sending peer's index; `null` for the origin.
    from: Option<usize>,
    /// The receiving peer's index.
    to: Option<usize>,
    bytes: u64,
}

impl FlowTrace {
    pub(super) fn record(&mut self, now: Duration, from: Endpoint, to: Endpoint, bytes: u64) {
        if bytes > 0 {
            let interval = now.as_secs() / INTERVAL.as_secs();
            *self.sent.entry((interval, from, to)).or_default() += bytes;
        }
    }

    /// Prints every tally, in time order.
    pub(super) fn print(&self) {
        let peer = |e: &Endpoint| match e {
            Endpoint::Peer(i) => Some(*i),
            Endpoint::Origin => None,
        };
        for ((interval, from, to), bytes) in &self.sent {
            let line = Line {
                t_s: interval * INTERVAL.as_secs(),
                from: peer(from),
                to: peer(to),
                bytes: *bytes,
            };
            if let Ok(text) = serde_json::to_string(&line) {
                eprintln!("{text}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_add_up_per_sender_receiver_and_interval() {
        let mut trace = FlowTrace::default();
        let (a, b) = (Endpoint::Peer(0), Endpoint::Peer(1));
        trace.record(Duration::from_millis(500), a, b, 10);
        trace.record(Duration::from_millis(9_990), a, b, 5);
        trace.record(Duration::from_secs(10), a, b, 7);
        trace.record(Duration::from_secs(3), Endpoint::Origin, b, 2);
        trace.record(Duration::from_secs(3), b, a, 0);
        let sent: Vec<_> = trace.sent.into_iter().collect();
        assert_eq!(
            sent,
            vec![
                ((0, a, b), 15),
                ((0, Endpoint::Origin, b), 2),
                ((1, a, b), 7),
            ]
        );
    }
}
