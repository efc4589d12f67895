//! Streaming viewers: playheads that start, play, stall and seek.
//!
//! A viewer starts once the first piece is verified, then advances at the
//! bitrate while the pieces under and just past its playhead are verified,
//! and counts a stall for every step it cannot. A viewer that seeks does so
//! once, to a random point, after a random share of the first half of the
//! content has played; from the seek until its new position plays is its
//! seek-to-play time, not a stall. The engine hears of the playhead every
//! second, and at once on a seek.

use std::time::Duration;

use chunkswarm_core::driver::REINTRODUCE_EVERY;
use chunkswarm_core::swarm::Playback;

use super::{SimRng, Simulation};

/// A streaming viewer's playhead.
#[derive(Debug, Clone)]
pub(super) struct Viewer {
    pub(super) bitrate: f64,
    pub(super) position: f64,
    pub(super) started_at: Option<Duration>,
    pub(super) stalled: Duration,
    next_report: Duration,
    /// The one seek this viewer makes, if it seeks.
    pub(super) seek: Option<Seek>,
}

/// A seek a viewer makes once.
#[derive(Debug, Clone)]
pub(super) struct Seek {
    /// Playback time after startup at which it seeks.
    after: Duration,
    /// Where to, in bytes.
    to: f64,
    /// When it seeked.
    at: Option<Duration>,
    /// When it seeked, while its new position does not play yet.
    waiting_since: Option<Duration>,
    /// From the seek until the new position played.
    pub(super) to_play: Option<Duration>,
}

impl Viewer {
    /// A viewer at `bitrate` bytes per second; it seeks with probability
    /// `seek_fraction` within content of `total` bytes.
    pub(super) fn new(bitrate: f64, seek_fraction: f64, total: f64, rng: &mut SimRng) -> Self {
        // Scenarios without seeks draw nothing, so their runs stay as they were.
        let seeks = seek_fraction > 0.0 && rng.unit() < seek_fraction;
        let seek = seeks.then(|| {
            let half = total / bitrate.max(1.0) / 2.0;
            Seek {
                after: Duration::from_secs_f64(rng.unit() * half),
                to: rng.unit() * total,
                at: None,
                waiting_since: None,
                to_play: None,
            }
        });
        Self {
            bitrate,
            position: 0.0,
            started_at: None,
            stalled: Duration::ZERO,
            next_report: Duration::ZERO,
            seek,
        }
    }

    /// One step of playback after startup: seek when due, wait for a
    /// seek's new position, else advance or stall.
    fn advance(
        &mut self,
        now: Duration,
        started: Duration,
        dt: Duration,
        total: f64,
        playable: &dyn Fn(f64) -> bool,
    ) {
        if let Some(seek) = self.seek.as_mut() {
            let due = seek.to_play.is_none() && seek.waiting_since.is_none();
            if due && now >= started + seek.after + self.stalled {
                seek.at = Some(now);
                seek.waiting_since = Some(now);
                self.position = seek.to;
                self.next_report = now;
            }
            if let Some(since) = seek.waiting_since {
                if !playable(self.position) {
                    return;
                }
                seek.to_play = Some(now - since);
                seek.waiting_since = None;
            }
        }
        let next = self.position + self.bitrate * dt.as_secs_f64();
        if playable(next) && playable(self.position) {
            self.position = next.min(total);
        } else {
            self.stalled += dt;
        }
    }

    /// It seeked at `now` (this step), whether or not its new position
    /// plays at once: the driver announces after every seek.
    pub(super) fn seeked_at(&self, now: Duration) -> bool {
        self.seek.as_ref().is_some_and(|s| s.at == Some(now))
    }

    /// The playhead as the engine takes it.
    pub(super) fn playback(&self) -> Playback {
        Playback {
            position: self.position as u64,
            bitrate: self.bitrate as u64,
        }
    }
}

impl Simulation {
    /// Advances every viewer's playhead, or counts a stall.
    pub(super) fn play(&mut self, dt: Duration) {
        let total = self.params.file_bytes as f64;
        let layout = self.info.layout();
        let now = self.now;
        let instant = self.instant();
        for peer in &mut self.peers {
            let (Some(viewer), Some(swarm)) = (peer.viewer.as_mut(), peer.swarm.as_mut()) else {
                continue;
            };
            if viewer.position >= total {
                continue;
            }
            let playable = |offset: f64| {
                let offset = (offset.min(total - 1.0)) as u64;
                layout
                    .piece_at_offset(offset)
                    .is_some_and(|p| swarm.have().contains(p))
            };
            match viewer.started_at {
                None if playable(0.0) => viewer.started_at = Some(now),
                None => {}
                Some(started) => {
                    viewer.advance(now, started, dt, total, &playable);
                    if viewer.seeked_at(now) {
                        // As the driver: an announce with offers, at most
                        // one per `REINTRODUCE_EVERY`.
                        peer.reintroduce = true;
                        let earliest = peer
                            .reintroduced_at
                            .map_or(now, |at| at + REINTRODUCE_EVERY);
                        peer.next_announce = peer.next_announce.min(earliest.max(now));
                    }
                }
            }
            if now >= viewer.next_report {
                viewer.next_report = now + Duration::from_secs(1);
                swarm.set_playback(instant, Some(viewer.playback()));
            }
        }
        for i in 0..self.peers.len() {
            self.drain(i);
        }
    }
}
