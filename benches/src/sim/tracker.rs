//! The tracker's part in a run: who meets whom.
//!
//! Every peer but the HTTP-only viewer announces when it joins and again
//! every [`Params::announce_every`](super::Params::announce_every), with as
//! many offers as it lacks connections (up to
//! [`Params::connect_to`](super::Params::connect_to)), at most
//! [`Params::offers_per_announce`](super::Params::offers_per_announce) at a
//! time. The tracker's own selection code,
//! [`chunkswarm_tracker::introductions::choose`], decides whom the offers
//! reach; each one becomes a connection after a few round trips of
//! signaling. The tracker sees every peer's pieces and playhead as they are
//! (a real one learns them from `x_cs_have` and announces, a moment later).
//!
//! [`Introductions::Random`] runs the same announces with the tracker's choice
//! before the piece map: random members, seeders skipping seeders.

use std::fmt;
use std::str::FromStr;

use chunkswarm_core::driver::offers_wanted;
use chunkswarm_core::piece_map::Bitfield;
use chunkswarm_tracker::introductions::{self, Asker, Holdings, Member, facts};
use serde::Serialize;

use super::net::Endpoint;
use super::{PEER_STREAM, Simulation};

/// How the tracker chooses whom an announcing peer's offers reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Introductions {
    /// By the piece map ([`chunkswarm_tracker::introductions`]).
    Tracker,
    /// At random, as WebTorrent's tracker does.
    Random,
}

impl FromStr for Introductions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tracker" => Ok(Self::Tracker),
            "random" => Ok(Self::Random),
            other => Err(format!(
                "unknown introductions {other:?} (expected tracker or random)"
            )),
        }
    }
}

impl fmt::Display for Introductions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tracker => "tracker",
            Self::Random => "random",
        })
    }
}

/// A present peer as the tracker's registry would hold it.
struct Registered<'a> {
    have: &'a Bitfield,
    complete: bool,
    position: Option<u32>,
    key: u64,
}

impl Member for Registered<'_> {
    fn holdings(&self) -> Holdings<'_> {
        if self.complete {
            Holdings::All
        } else {
            Holdings::Some(self.have)
        }
    }

    fn position(&self) -> Option<u32> {
        self.position
    }

    fn fetch_key(&self) -> Option<u64> {
        Some(self.key)
    }
}

impl Simulation {
    /// Announces every peer whose re-announce is due.
    pub(super) fn announce_due(&mut self) {
        for i in 0..self.peers.len() {
            let peer = &self.peers[i];
            if self.is_present(i) && !peer.isolated && peer.next_announce <= self.now {
                self.announce(i);
            }
        }
    }

    /// Peer `i` announces: the tracker forwards its offers, and each offer
    /// becomes a connection once signaling and ICE are through. With
    /// [`Introductions::Tracker`] the reply carries the swarm facts, which
    /// reach the peer's engine after a round trip.
    pub(super) fn announce(&mut self, i: usize) {
        self.peers[i].next_announce = self.now + self.params.announce_every;
        let after_seek = std::mem::take(&mut self.peers[i].reintroduce);
        if after_seek {
            self.peers[i].reintroduced_at = Some(self.now);
        }
        let want = offers_wanted(
            self.connections(i),
            self.params.connect_to,
            self.params.offers_per_announce,
            after_seek,
        );
        let facts_wanted = self.params.introductions == Introductions::Tracker;
        if want == 0 && !facts_wanted {
            return;
        }
        let mut present = Vec::new();
        let mut registry = Vec::new();
        for (j, peer) in self.peers.iter().enumerate() {
            let Some(swarm) = peer.swarm.as_ref() else {
                continue;
            };
            if peer.left_at.is_some() || peer.isolated {
                continue;
            }
            present.push(j);
            registry.push(Registered {
                have: swarm.have(),
                complete: swarm.is_complete(),
                position: swarm.playback_piece().map(|p| p.get()),
                key: facts::key_of(&super::peer_id(j)),
            });
        }
        let Some(index) = present.iter().position(|&j| j == i) else {
            return;
        };
        let me = &registry[index];
        let piece_count = self.info.layout().piece_count();
        let asker = match self.params.introductions {
            Introductions::Tracker => Asker {
                holdings: me.holdings(),
                position: me.position,
                index: Some(index),
                piece_count,
            },
            Introductions::Random => Asker {
                holdings: if me.complete {
                    Holdings::All
                } else {
                    Holdings::Unknown
                },
                position: None,
                index: Some(index),
                piece_count,
            },
        };
        if facts_wanted {
            let facts = facts::summarize(&asker, &registry, &mut self.tracker_rng);
            let at = self.now + self.params.latency * 2;
            self.facts_due.push((at, i, facts));
        }
        let chosen = introductions::choose(&asker, &registry, want, &mut self.tracker_rng);
        // Signaling through the tracker and ICE take a few round trips.
        let at = self.now + self.params.latency * 6;
        for k in chosen {
            self.connects.push((at, i, present[k]));
        }
    }

    /// Hands the swarm facts whose reply arrived to their peers' engines.
    pub(super) fn facts_arrived(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.facts_due)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.facts_due = later;
        let instant = self.instant();
        for (_, i, facts) in due {
            if let Some(swarm) = self.peers[i].swarm.as_mut() {
                swarm.handle_swarm_facts(instant, facts);
                self.drain(i);
            }
        }
    }

    /// Open and pending connections of peer `i`.
    fn connections(&self, i: usize) -> usize {
        let open = self
            .net
            .links
            .keys()
            .filter(|(from, to, stream)| {
                *from == Endpoint::Peer(i)
                    && matches!(to, Endpoint::Peer(_))
                    && *stream == PEER_STREAM
            })
            .count();
        let pending = self
            .connects
            .iter()
            .filter(|(_, a, b)| *a == i || *b == i)
            .count();
        open + pending
    }
}

#[cfg(test)]
mod tests {
    use super::Introductions;

    #[test]
    fn introductions_parse_by_name_and_refuse_others() {
        for mode in [Introductions::Tracker, Introductions::Random] {
            assert_eq!(mode.to_string().parse::<Introductions>(), Ok(mode));
        }
        assert!("piece-map".parse::<Introductions>().is_err());
    }

    #[test]
    fn a_viewer_announces_with_offers_as_it_seeks() {
        let mut params = super::super::Params::scenario("vod", 4).unwrap();
        params.peers = 6;
        params.file_bytes = 16 << 20;
        params.join_window = std::time::Duration::from_secs(3);
        params.seek_fraction = 1.0;
        let mut sim = super::super::Simulation::new(params);
        let mut seeked_at = vec![None; sim.peers.len()];
        while sim.now < std::time::Duration::from_secs(40) {
            sim.step();
            for (i, peer) in sim.peers.iter().enumerate() {
                if peer.viewer.as_ref().is_some_and(|v| v.seeked_at(sim.now)) {
                    seeked_at[i] = Some(sim.now);
                }
            }
        }
        let seekers: Vec<usize> = (0..seeked_at.len())
            .filter(|i| seeked_at[*i].is_some())
            .collect();
        assert!(!seekers.is_empty());
        for i in seekers {
            // The announce goes out in the step after the seek.
            let at = sim.peers[i].reintroduced_at;
            assert_eq!(at, seeked_at[i].map(|t| t + sim.params.dt), "peer {i}");
        }
    }
}
