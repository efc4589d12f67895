//! `swarm-sim --trace-origin`: one JSON line on standard error for every
//! fetch a peer sends to the origin, saying why, how soon playback needs the
//! piece, and how many of the peer's neighbours already hold it. The report
//! counts fetches by reason; this says which peer paid for which piece and
//! when, which is what deciding where the origin's bytes go needs.

use std::collections::BTreeMap;

use chunkswarm_core::swarm::OriginFetches;
use serde::Serialize;

use super::Simulation;
use super::net::Endpoint;

/// One origin fetch.
#[derive(Debug, Serialize)]
struct Line {
    /// Virtual seconds since the run began.
    t_s: f64,
    peer: usize,
    /// The viewer that uses only the origin, as the startup reference.
    http_only: bool,
    piece: u32,
    /// Why the engine paid for it; two or more names joined by `|` when
    /// fetches for different reasons started in the same step.
    reason: String,
    /// Seconds of playback before the viewer reaches the piece (`None` for a
    /// peer that does not play, or a piece behind the playhead).
    due_in_s: Option<f64>,
    /// The peer's connected neighbours, and those of them holding the piece.
    neighbours: usize,
    neighbours_holding: usize,
    /// The peer's download rate from its neighbours, bytes per second.
    p2p_rate: f64,
}

/// The origin fetches each peer has been traced for so far.
#[derive(Debug, Default)]
pub(super) struct OriginTrace {
    seen: BTreeMap<usize, OriginFetches>,
}

impl Simulation {
    /// Prints a line for the origin fetch peer `i` just sent, of the piece
    /// holding content byte `offset`, if the run is traced.
    pub(super) fn trace_origin_fetch(&mut self, i: usize, offset: u64) {
        if self.origin_trace.is_none() {
            return;
        }
        let now = self.instant();
        let layout = self.info.layout();
        let Some(piece) = layout.piece((offset / u64::from(layout.piece_length())) as u32) else {
            return;
        };
        let Some(swarm) = self.peers[i].swarm.as_ref() else {
            return;
        };
        let stats = swarm.stats(now);
        let reason = match self.origin_trace.as_mut() {
            Some(trace) => new_reasons(trace.seen.entry(i).or_default(), stats.origin_fetches),
            None => return,
        };
        let due_in_s = self.peers[i].viewer.as_ref().and_then(|viewer| {
            let offset = layout.piece_offset(piece) as f64;
            (offset >= viewer.position).then(|| (offset - viewer.position) / viewer.bitrate)
        });
        let neighbours: Vec<usize> = self
            .net
            .links
            .keys()
            .filter_map(|(from, to, _)| match (from, to) {
                (Endpoint::Peer(a), Endpoint::Peer(b)) if *a == i => Some(*b),
                _ => None,
            })
            .collect();
        let neighbours_holding = neighbours
            .iter()
            .filter(|j| {
                self.peers[**j]
                    .swarm
                    .as_ref()
                    .is_some_and(|s| s.have().contains(piece))
            })
            .count();
        let line = Line {
            t_s: centis(self.now.as_secs_f64()),
            peer: i,
            http_only: self.peers[i].isolated,
            piece: piece.get(),
            reason,
            due_in_s: due_in_s.map(centis),
            neighbours: neighbours.len(),
            neighbours_holding,
            p2p_rate: stats.p2p_rate.round(),
        };
        if let Ok(text) = serde_json::to_string(&line) {
            eprintln!("{text}");
        }
    }
}

/// The reasons whose counts grew since `seen`, which then takes the
/// increment of the first of them (the engine counts a fetch before it says
/// the fetch started, so one fetch is accounted per line).
fn new_reasons(seen: &mut OriginFetches, now: OriginFetches) -> String {
    let mut counts = [
        ("fast_start", &mut seen.fast_start, now.fast_start),
        ("deadline", &mut seen.deadline, now.deadline),
        (
            "retries_exhausted",
            &mut seen.retries_exhausted,
            now.retries_exhausted,
        ),
        (
            "no_peer_source",
            &mut seen.no_peer_source,
            now.no_peer_source,
        ),
    ];
    let mut grown = counts.iter_mut().filter(|(_, seen, now)| **seen < *now);
    let Some((first, seen_first, _)) = grown.next() else {
        return "unknown".to_owned();
    };
    **seen_first += 1;
    std::iter::once(*first)
        .chain(grown.map(|(name, _, _)| *name))
        .collect::<Vec<_>>()
        .join("|")
}

/// Seconds rounded to hundredths, as the lines print them.
fn centis(seconds: f64) -> f64 {
    (seconds * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_takes_one_fetch_and_names_every_candidate() {
        let mut seen = OriginFetches::default();
        let now = OriginFetches {
            fast_start: 1,
            deadline: 2,
            ..OriginFetches::default()
        };
        // Three fetches started in one step: the first line cannot tell which
        // it is, the rest can once the earlier ones are accounted.
        assert_eq!(new_reasons(&mut seen, now), "fast_start|deadline");
        assert_eq!(new_reasons(&mut seen, now), "deadline");
        assert_eq!(new_reasons(&mut seen, now), "deadline");
        assert_eq!(seen, now);
        assert_eq!(new_reasons(&mut seen, now), "unknown");
    }
}
