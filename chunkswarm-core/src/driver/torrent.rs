//! One torrent inside the driver's state machine: its swarm and the
//! bookkeeping of its connections, offers, requests and writes. It holds no
//! I/O object; the shell keeps those, named by the same keys.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use web_time::Instant;

use super::action::Attempt;
use super::engine::Engine;
use super::signal::Id20;
use crate::layout::PieceIndex;
use crate::swarm::{HttpRequestId, PeerKey, Playback};

/// The first wait before announcing again after a failed connection.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// A connection to a remote peer being made.
#[derive(Debug, Clone, Copy)]
pub(super) struct Connecting {
    /// Names this attempt in the shell's answers: an answer about an
    /// attempt given up for another is discarded.
    pub(super) attempt: Attempt,
    /// We made the offer (the remote answered it).
    pub(super) we_offered: bool,
    /// The offer this connection answers or was answered for.
    pub(super) offer_id: Id20,
    /// The data channel is being opened (not our answer being made): a
    /// timeout then counts as a failed connection.
    pub(super) opening: bool,
    /// When the attempt is given up.
    pub(super) deadline: Instant,
}

/// Everything the state machine keeps about one torrent.
pub(super) struct Torrent {
    /// The swarm, or the fetch of the metadata before it.
    pub(super) engine: Engine,
    /// Open channels and the remote's tracker peer id.
    pub(super) channels: BTreeMap<PeerKey, Id20>,
    /// Remote peer ids with a connection being made.
    pub(super) connecting: BTreeMap<Id20, Connecting>,
    /// HTTP requests in flight.
    pub(super) http: BTreeSet<HttpRequestId>,
    /// Pieces handed to the store whose write has not finished, or failed:
    /// reads are answered from here so a piece is never lost between the two.
    pub(super) writing: BTreeMap<PieceIndex, Bytes>,
    /// Pieces of `writing` the store refused: written again on resume.
    pub(super) unwritten: BTreeSet<PieceIndex>,
    /// Our offers waiting for an answer, and when they expire.
    pub(super) offers: BTreeMap<Id20, Instant>,
    /// An announce (with offers being made) is under way.
    pub(super) announcing: bool,
    /// The first announce (`started`) went out.
    pub(super) announced: bool,
    pub(super) next_announce: Instant,
    pub(super) interval: Duration,
    /// Pieces verified since the last `x_cs_have`.
    pub(super) new_haves: Vec<u32>,
    pub(super) completed_announced: bool,
    /// The engine said `Completed`: the event goes out once the last write
    /// has landed and the store is flushed.
    pub(super) completed_waiting: bool,
    /// Flushing the store failed: flushed again on resume.
    pub(super) flush_failed: bool,
    /// Connection attempts failed in a row; each moves the next announce
    /// closer ([`Torrent::retry_backoff`]).
    pub(super) failed_connections: u32,
    /// The playhead as last set, and when.
    pub(super) playback: Option<(Instant, Playback)>,
    /// The playhead jumped (a seek): the next announce carries offers even
    /// at the connection limit, so that the tracker, which introduces by
    /// the pieces around the playhead, finds holders of the new position.
    pub(super) reintroduce: bool,
    /// When the last such announce went out.
    pub(super) reintroduced_at: Option<Instant>,
}

impl Torrent {
    pub(super) fn new(now: Instant, engine: Engine, interval: Duration) -> Self {
        let completed_announced = engine.is_complete();
        Self {
            engine,
            channels: BTreeMap::new(),
            connecting: BTreeMap::new(),
            http: BTreeSet::new(),
            writing: BTreeMap::new(),
            unwritten: BTreeSet::new(),
            offers: BTreeMap::new(),
            announcing: false,
            announced: false,
            next_announce: now,
            interval,
            new_haves: Vec::new(),
            completed_announced,
            completed_waiting: false,
            flush_failed: false,
            failed_connections: 0,
            playback: None,
            reintroduce: false,
            reintroduced_at: None,
        }
    }

    /// Records a new playhead; true if it jumped: it is more than a piece
    /// from where the previous one, played on at its bitrate, would be.
    pub(super) fn playhead_jumped(&mut self, now: Instant, playback: Option<Playback>) -> bool {
        let before = std::mem::replace(&mut self.playback, playback.map(|p| (now, p)));
        let (Some((then, old)), Some(new), Some(piece)) =
            (before, playback, self.engine.piece_length())
        else {
            return false;
        };
        let played = now.saturating_duration_since(then).as_secs_f64() * old.bitrate as f64;
        let expected = old.position as f64 + played;
        (new.position as f64 - expected).abs() > f64::from(piece)
    }

    /// How soon to announce again after `failed_connections` failures in a
    /// row: 5 s, doubling, at most the announce interval.
    pub(super) fn retry_backoff(&self) -> Duration {
        let doublings = self.failed_connections.saturating_sub(1).min(10);
        (FIRST_RETRY * 2u32.pow(doublings)).min(self.interval)
    }

    /// Whether we already talk to (or are connecting to) this remote peer.
    pub(super) fn knows_remote(&self, remote: &Id20) -> bool {
        self.connecting.contains_key(remote) || self.talks_to(remote)
    }

    /// Whether a channel to this remote peer is open.
    pub(super) fn talks_to(&self, remote: &Id20) -> bool {
        self.channels.values().any(|r| r == remote)
    }

    /// The remote peer an attempt of this torrent connects to.
    pub(super) fn remote_of(&self, attempt: Attempt) -> Option<Id20> {
        self.connecting
            .iter()
            .find(|(_, c)| c.attempt == attempt)
            .map(|(remote, _)| *remote)
    }

    /// Bytes still missing, for the announce's `left`.
    pub(super) fn left(&self, now: Instant) -> u64 {
        self.engine.left(now)
    }

    /// The earliest moment something of this torrent is due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let offers = self.offers.values().min().copied();
        let connecting = self.connecting.values().map(|c| c.deadline).min();
        let announce = (!self.announcing).then_some(self.next_announce);
        [self.engine.poll_timeout(), offers, connecting, announce]
            .into_iter()
            .flatten()
            .min()
    }
}
