//! `swarm-sim --inspect SECONDS:PEERS`: at the given virtual times, one JSON
//! line on standard error for each named peer, with what its engine reports
//! of itself and of every neighbour ([`Swarm::peers`]): who chokes whom, who
//! wants what, the requests queued each way, and where each neighbour plays.
//! The origin trace says which viewer paid for which piece; this says why
//! its neighbours did not bring it (they chose us not, or served others).
//!
//! [`Swarm::peers`]: chunkswarm_core::swarm::Swarm::peers

use std::time::Duration;

use serde::Serialize;

use super::{OriginFetchCounts, Simulation};

/// When to print, and whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspect {
    at: Vec<Duration>,
    peers: Vec<usize>,
}

impl std::str::FromStr for Inspect {
    type Err = String;

    /// `35,40.5:0,1,4`: at 35 s and 40.5 s, peers 0, 1 and 4.
    fn from_str(spec: &str) -> Result<Self, String> {
        let bad = || format!("--inspect: {spec:?} is not SECONDS[,SECONDS...]:PEER[,PEER...]");
        let (times, peers) = spec.split_once(':').ok_or_else(bad)?;
        let at = times
            .split(',')
            .map(|t| {
                t.parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let peers = peers
            .split(',')
            .map(|p| p.parse::<usize>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { at, peers })
    }
}

/// One peer as its engine sees itself and its neighbours.
#[derive(Debug, Serialize)]
struct Line {
    t_s: f64,
    peer: usize,
    /// The piece its playback is in, if it plays.
    playhead_piece: Option<u32>,
    pieces: u32,
    origin_fetches: OriginFetchCounts,
    /// Bytes per second from peers and to them.
    p2p_rate: f64,
    upload_rate: f64,
    neighbours: Vec<Neighbour>,
}

#[derive(Debug, Serialize)]
struct Neighbour {
    peer: u64,
    pieces: u32,
    /// The piece it plays in now, by its last report.
    playhead_piece: Option<u64>,
    we_choke: bool,
    it_chokes: bool,
    we_want: bool,
    it_wants: bool,
    /// Block requests we have outstanding to it, and it queued with us.
    requests_out: usize,
    requests_in: usize,
    /// Bytes per second from it and to it.
    from_rate: f64,
    to_rate: f64,
}

impl Simulation {
    /// Prints the inspected peers if this step is the first at or after one
    /// of the times asked for.
    pub(super) fn inspect_due(&self) {
        let Some(inspect) = self.inspect.as_ref() else {
            return;
        };
        let dt = self.params.dt;
        let due = inspect
            .at
            .iter()
            .any(|t| self.now >= *t && self.now < *t + dt);
        if !due {
            return;
        }
        for line in self.inspect_lines(&inspect.peers) {
            if let Ok(text) = serde_json::to_string(&line) {
                eprintln!("{text}");
            }
        }
    }

    /// The views of those of `peers` that are in the swarm now.
    fn inspect_lines(&self, peers: &[usize]) -> Vec<Line> {
        let now = self.instant();
        let piece_length = u64::from(self.params.piece_length);
        let mut lines = Vec::new();
        for &i in peers {
            let Some(swarm) = self.peers.get(i).and_then(|p| p.swarm.as_ref()) else {
                continue;
            };
            let stats = swarm.stats(now);
            let neighbours = swarm
                .peers(now)
                .into_iter()
                .map(|n| Neighbour {
                    peer: n.peer.0,
                    pieces: n.pieces,
                    playhead_piece: n.playhead.map(|offset| offset / piece_length),
                    we_choke: n.am_choking,
                    it_chokes: n.peer_choking,
                    we_want: n.am_interested,
                    it_wants: n.peer_interested,
                    requests_out: n.requests_out,
                    requests_in: n.requests_in,
                    from_rate: n.download_rate.round(),
                    to_rate: n.upload_rate.round(),
                })
                .collect();
            let line = Line {
                t_s: (self.now.as_secs_f64() * 100.0).round() / 100.0,
                peer: i,
                playhead_piece: swarm.playback_piece().map(|p| p.get()),
                pieces: swarm.have().count_ones(),
                origin_fetches: {
                    let mut counts = OriginFetchCounts::default();
                    counts.add(stats.origin_fetches);
                    counts
                },
                p2p_rate: stats.p2p_rate.round(),
                upload_rate: stats.upload_rate.round(),
                neighbours,
            };
            lines.push(line);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::net::Endpoint;

    #[test]
    fn a_spec_names_times_and_peers() {
        let inspect: Inspect = "35,40.5:0,1,4".parse().unwrap();
        assert_eq!(
            inspect,
            Inspect {
                at: vec![Duration::from_secs(35), Duration::from_millis(40_500)],
                peers: vec![0, 1, 4],
            }
        );
        for bad in ["35", "x:1", "35:", "35:a", "-1:0", ":0"] {
            assert!(bad.parse::<Inspect>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_view_lists_every_connection_and_where_viewers_play() {
        let mut params = super::super::Params::scenario("streaming", 3).unwrap();
        params.peers = 4;
        params.file_bytes = 8 << 20;
        params.join_window = Duration::from_secs(4);
        let mut sim = Simulation::new(params);
        while sim.now < Duration::from_secs(6) {
            sim.step();
        }
        // Peer 9 is not in the run: it gets no line.
        let lines = sim.inspect_lines(&[0, 1, 9]);
        assert_eq!(lines.iter().map(|l| l.peer).collect::<Vec<_>>(), [0, 1]);
        for line in &lines {
            let swarm = sim.peers[line.peer].swarm.as_ref().unwrap();
            assert_eq!(line.pieces, swarm.have().count_ones());
            assert!(line.playhead_piece.is_some(), "a viewer plays by 6 s");
            let mut listed: Vec<u64> = line.neighbours.iter().map(|n| n.peer).collect();
            listed.sort_unstable();
            let mut linked: Vec<u64> = sim
                .net
                .links
                .keys()
                .filter_map(|(from, to, _)| match (from, to) {
                    (Endpoint::Peer(a), Endpoint::Peer(b)) if *a == line.peer => Some(*b as u64),
                    _ => None,
                })
                .collect();
            linked.sort_unstable();
            linked.dedup();
            assert!(
                !listed.is_empty() && listed == linked,
                "{listed:?} {linked:?}"
            );
            for n in &line.neighbours {
                let theirs = sim.peers[n.peer as usize].swarm.as_ref().unwrap();
                assert!(
                    n.pieces <= theirs.have().count_ones(),
                    "heard, not invented"
                );
                assert!(n.playhead_piece.is_some(), "every neighbour is a viewer");
            }
        }
    }
}
