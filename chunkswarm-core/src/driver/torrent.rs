//! One torrent inside the driver: its swarm, its connections, and how its
//! outputs are carried out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::AbortHandle;
use web_time::Instant;

use super::io::{ChannelSender, HttpOrigin, PendingConnection, PieceStore};
use super::signal::Id20;
use crate::layout::PieceIndex;
use crate::swarm::{HttpRequestId, PeerKey, Swarm};

/// The first wait before announcing again after a failed connection.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// An open channel of this torrent.
#[derive(Debug)]
pub(super) struct Channel {
    pub(super) sender: Box<dyn ChannelSender>,
    /// The remote's tracker peer id.
    pub(super) remote: Id20,
}

/// A connection to a remote peer being opened.
#[derive(Debug, Clone, Copy)]
pub(super) struct Connecting {
    pub(super) since: Instant,
    /// Names this attempt in [`Done::Opened`](super::run::Done::Opened): a
    /// result of an attempt given up for another is discarded.
    pub(super) attempt: u64,
    /// We made the offer (the remote answered it).
    pub(super) we_offered: bool,
}

/// An offer of ours that waits for an answer.
pub(super) struct PendingOffer {
    pub(super) connection: Box<dyn PendingConnection>,
    pub(super) expires: Instant,
}

/// Everything the driver keeps about one torrent.
pub(super) struct Torrent {
    pub(super) swarm: Swarm,
    pub(super) store: Arc<dyn PieceStore>,
    pub(super) origin: Option<Arc<dyn HttpOrigin>>,
    pub(super) channels: BTreeMap<PeerKey, Channel>,
    /// Remote peer ids with a connection being opened.
    pub(super) connecting: BTreeMap<Id20, Connecting>,
    pub(super) http: BTreeMap<HttpRequestId, AbortHandle>,
    /// Pieces handed to the store whose write has not finished, or failed:
    /// reads are answered from here so a piece is never lost between the two.
    pub(super) writing: BTreeMap<PieceIndex, Bytes>,
    /// Pieces of `writing` the store refused: written again on resume.
    pub(super) unwritten: BTreeSet<PieceIndex>,
    pub(super) offers: BTreeMap<Id20, PendingOffer>,
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
    pub(super) uploaded: u64,
    /// Connection attempts failed in a row; each moves the next announce
    /// closer ([`Torrent::retry_backoff`]).
    pub(super) failed_connections: u32,
}

impl Torrent {
    pub(super) fn new(
        now: Instant,
        swarm: Swarm,
        store: Arc<dyn PieceStore>,
        origin: Option<Arc<dyn HttpOrigin>>,
        interval: Duration,
    ) -> Self {
        let completed_announced = swarm.is_complete();
        Self {
            swarm,
            store,
            origin,
            channels: BTreeMap::new(),
            connecting: BTreeMap::new(),
            http: BTreeMap::new(),
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
            uploaded: 0,
            failed_connections: 0,
        }
    }

    /// How soon to announce again after `failed_connections` failures in a
    /// row: 5 s, doubling, at most the announce interval.
    pub(super) fn retry_backoff(&self) -> Duration {
        let doublings = self.failed_connections.saturating_sub(1).min(10);
        (FIRST_RETRY * 2u32.pow(doublings)).min(self.interval)
    }

    /// Whether we already talk to (or are connecting to) this remote peer.
    pub(super) fn knows_remote(&self, remote: &Id20) -> bool {
        self.connecting.contains_key(remote) || self.channels.values().any(|c| &c.remote == remote)
    }

    /// Bytes still missing, for the announce's `left`.
    pub(super) fn left(&self, now: Instant) -> u64 {
        let stats = self.swarm.stats(now);
        stats.total_bytes.saturating_sub(stats.verified_bytes)
    }

    /// The earliest moment something of this torrent is due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let offers = self.offers.values().map(|o| o.expires).min();
        let announce = (!self.announcing).then_some(self.next_announce);
        [self.swarm.poll_timeout(), offers, announce]
            .into_iter()
            .flatten()
            .min()
    }

    /// Drops offers nobody answered in time.
    pub(super) fn expire_offers(&mut self, now: Instant) {
        self.offers.retain(|_, offer| offer.expires > now);
    }
}
