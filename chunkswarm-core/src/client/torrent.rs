//! One added torrent: its handle, its watchable state, and `wait`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use tokio::sync::watch;

use crate::driver::{DriverClosed, DriverEvent, Handle, HttpError, StoreError, TrackerError};
use crate::metainfo::{InfoHash, Metainfo};
use crate::swarm::{Event, PeerSnapshot, Playback, Stats};

/// Where a torrent stands, as [`Torrent::state`] and [`Torrent::watch`]
/// show it. Updated from the torrent's events as they happen.
#[derive(Debug, Clone, PartialEq)]
pub struct TorrentState {
    /// Counters and rates as of the last progress event (about every
    /// 250 ms while anything changes).
    pub stats: Stats,
    /// Every piece is verified, written to the store and flushed to the
    /// device: the content reads back whole.
    pub complete: bool,
    /// Stopped requesting data ([`Torrent::pause`], or a store failure).
    pub paused: bool,
    /// The tracker connection.
    pub tracker: TrackerState,
    /// Why the torrent stopped, if it did: the store refused a piece (a full
    /// disk: [`Torrent::resume`] writes it again), it was removed, or it
    /// has no source left (until a peer connects).
    pub error: Option<TorrentError>,
}

/// The tracker connection of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerState {
    /// The torrent names no WebSocket tracker: peers are met through none.
    None,
    /// Connecting for the first time.
    Connecting,
    /// Connected: announces and offers go out.
    Connected,
    /// Unreachable, lost or refusing; the client keeps reconnecting.
    Failed(TrackerError),
}

/// Why [`Torrent::wait`] gave up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TorrentError {
    /// The store refused a piece or could not flush (its
    /// [`StoreError::kind`] tells why); the torrent is paused with the piece
    /// in memory, and [`Torrent::resume`] tries again.
    #[error("the store failed: {0}")]
    Store(StoreError),
    /// No source left: the torrent is incomplete, no peer has been
    /// connected for [`SwarmConfig::no_source_timeout`](crate::swarm::SwarmConfig::no_source_timeout),
    /// and the web seed is absent or gone (`origin` says why, e.g.
    /// [`HttpError::Status`]`(404)`). The torrent keeps running: a peer the
    /// tracker introduces later clears this, and [`Torrent::wait`] may be
    /// called again.
    #[error("no source left: no peer, and {}", match origin {
        Some(error) => format!("the web seed is gone ({error})"),
        None => "no web seed".to_owned(),
    })]
    NoSourceLeft {
        /// Why the web seed is of no use: `None` when the torrent has none
        /// (or HTTP is off), else its answer that made it gone.
        origin: Option<HttpError>,
    },
    /// [`Torrent::remove`] was called.
    #[error("the torrent was removed")]
    Removed,
    /// The torrent's task stopped (its runtime shut down).
    #[error(transparent)]
    Stopped(#[from] DriverClosed),
}

pub(super) struct Shared {
    pub(super) meta: Metainfo,
    pub(super) path: PathBuf,
    pub(super) driver: Handle,
    pub(super) state: Arc<watch::Sender<TorrentState>>,
}

/// A torrent added to a [`Client`](super::Client): progress, control and
/// [`wait`](Self::wait). Cheap to clone; the torrent stops (announcing
/// `stopped`, finishing its writes) when the last clone is dropped or
/// [`remove`](Self::remove) is called. Its files stay on disk.
#[derive(Clone)]
pub struct Torrent {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for Torrent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Torrent")
            .field("info_hash", &self.info_hash())
            .field("path", &self.shared.path)
            .field("state", &*self.shared.state.borrow())
            .finish()
    }
}

impl Torrent {
    /// The torrent's infohash.
    pub fn info_hash(&self) -> InfoHash {
        self.shared.meta.info_hash()
    }

    /// The torrent.
    pub fn metainfo(&self) -> &Metainfo {
        &self.shared.meta
    }

    /// Where its content is: the file, or the folder of a multi-file torrent.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Where it stands now.
    pub fn state(&self) -> TorrentState {
        self.shared.state.borrow().clone()
    }

    /// Its state as it changes: `changed().await`, then `borrow()`.
    pub fn watch(&self) -> watch::Receiver<TorrentState> {
        self.shared.state.subscribe()
    }

    /// Every event of the torrent from now on: pieces verified and where
    /// from, peers, progress, failures. Ends when the torrent stops.
    pub fn events(&self) -> impl Stream<Item = Event> + Send + Unpin + use<> {
        let info_hash = self.info_hash();
        self.shared.driver.events().filter_map(move |e| {
            futures::future::ready((e.info_hash == info_hash).then_some(e.event))
        })
    }

    /// Resolves once every piece is verified, written and flushed to the
    /// device, so the content reads back whole; at once for a torrent that
    /// was complete when added. Fails when the store fails (resume and
    /// wait again), when no source is left ([`TorrentError::NoSourceLeft`]:
    /// wait again to wait for peers), or when the torrent is removed.
    pub async fn wait(&self) -> Result<(), TorrentError> {
        let no_source =
            |s: &TorrentState| matches!(s.error, Some(TorrentError::NoSourceLeft { .. }));
        let mut state = self.shared.state.subscribe();
        // "No source left" reported before this call is old news: this
        // call waits for peers, and fails only if it is reported again.
        let mut old_news = no_source(&state.borrow());
        let outcome = state
            .wait_for(|s| {
                old_news &= no_source(s);
                s.complete || (s.error.is_some() && !old_news)
            })
            .await
            .map_err(|_| DriverClosed)?;
        if let Some(error) = outcome.error.clone().filter(|_| !outcome.complete) {
            return Err(error);
        }
        drop(outcome);
        // The last progress event may predate the last pieces: count afresh.
        if let Ok(stats) = self.stats().await {
            self.shared.state.send_modify(|s| s.stats = stats);
        }
        Ok(())
    }

    /// The counters and rates now, from the engine itself (the state's
    /// are as of the last progress event).
    pub async fn stats(&self) -> Result<Stats, DriverClosed> {
        let stats = self.shared.driver.stats(self.info_hash()).await?;
        stats.ok_or(DriverClosed)
    }

    /// Stops requesting data; peers are still served.
    pub fn pause(&self) -> Result<(), DriverClosed> {
        self.shared.driver.pause(self.info_hash(), true)?;
        self.shared.state.send_modify(|s| s.paused = true);
        Ok(())
    }

    /// Requests data again; pieces the store refused are written again.
    pub fn resume(&self) -> Result<(), DriverClosed> {
        self.shared.driver.pause(self.info_hash(), false)?;
        self.shared.state.send_modify(|s| {
            s.paused = false;
            if matches!(s.error, Some(TorrentError::Store(_))) {
                s.error = None;
            }
        });
        Ok(())
    }

    /// Streams from `playback` (the playhead's byte offset and the
    /// content's bitrate): pieces there come first, in order, with the web
    /// seed rescuing late ones. `None` goes back to rarest-first.
    pub fn seek(&self, playback: Option<Playback>) -> Result<(), DriverClosed> {
        self.shared.driver.set_playback(self.info_hash(), playback)
    }

    /// Caps the upload in bytes per second (`None`: unlimited).
    pub fn set_upload_limit(&self, limit: Option<u64>) -> Result<(), DriverClosed> {
        self.shared.driver.set_upload_limit(self.info_hash(), limit)
    }

    /// The connections now, as a peer list shows them.
    pub async fn peers(&self) -> Result<Vec<PeerSnapshot>, DriverClosed> {
        let peers = self.shared.driver.peers(self.info_hash()).await?;
        peers.ok_or(DriverClosed)
    }

    /// Stops the torrent: announces `stopped`, closes its connections,
    /// finishes writes under way. Its files stay on disk; `wait` fails with
    /// [`TorrentError::Removed`].
    pub async fn remove(&self) -> Result<(), DriverClosed> {
        self.shared.driver.remove_torrent(self.info_hash()).await?;
        self.shared.driver.shutdown();
        self.shared
            .state
            .send_modify(|s| s.error = Some(TorrentError::Removed));
        Ok(())
    }
}

/// Applies one event to the state; returns whether anything changed.
pub(super) fn apply(state: &mut TorrentState, event: DriverEvent) -> bool {
    match event.event {
        Event::Progress(stats) => state.stats = stats,
        Event::Completed => {
            state.complete = true;
            state.stats.pieces_verified = state.stats.pieces_total;
            state.stats.verified_bytes = state.stats.total_bytes;
        }
        Event::StoreFailed { error, .. } => {
            state.paused = true;
            state.error = Some(TorrentError::Store(error));
        }
        Event::TrackerConnected => state.tracker = TrackerState::Connected,
        Event::TrackerFailed { error } => state.tracker = TrackerState::Failed(error),
        Event::NoSourceLeft { origin } if state.error.is_none() => {
            state.error = Some(TorrentError::NoSourceLeft { origin });
        }
        // A source again.
        Event::PeerConnected { .. }
            if matches!(state.error, Some(TorrentError::NoSourceLeft { .. })) =>
        {
            state.error = None;
        }
        _ => return false,
    }
    true
}
