//! The caller's side of a running driver.

use std::fmt;
use std::sync::Arc;

use futures::channel::{mpsc, oneshot};

use super::io::{HttpOrigin, PieceStore, StoreError};
use crate::metainfo::{Info, InfoHash};
use crate::piece_map::Bitfield;
use crate::swarm::{Event, PeerSnapshot, Playback, Stats, SwarmConfig};
use crate::wire::metadata::MetadataError;

/// A torrent to add: what it is, where its pieces live, where its web seed is.
///
/// Who decides what:
/// - the peer id is the driver's ([`DriverConfig::peer_id`](super::DriverConfig::peer_id)),
///   and the engine's random seed is drawn from the driver's
///   ([`DriverConfig::rng_seed`](super::DriverConfig::rng_seed)): the
///   `peer_id` and `rng_seed` of `config` are ignored;
/// - the web seed is used only when there is one (`origin`) *and*
///   `config.http.enabled`: `origin: None` turns HTTP off whatever
///   `http.enabled` says, and `http.enabled = false` leaves an origin unused.
pub struct TorrentSpec {
    /// The info dictionary.
    pub info: Info,
    /// Where verified pieces are kept; asked at once which it already holds.
    pub store: Arc<dyn PieceStore>,
    /// The web seed, if any (HTTP use is turned off without one).
    pub origin: Option<Arc<dyn HttpOrigin>>,
    /// The engine's settings, but for `peer_id` and `rng_seed` (the driver's).
    pub config: SwarmConfig,
}

impl TorrentSpec {
    /// A torrent kept in `store`, without a web seed, with the default
    /// engine settings.
    pub fn new(info: Info, store: Arc<dyn PieceStore>) -> Self {
        Self {
            info,
            store,
            origin: None,
            config: SwarmConfig::default(),
        }
    }

    /// The same, with this web seed.
    #[must_use]
    pub fn with_origin(mut self, origin: Arc<dyn HttpOrigin>) -> Self {
        self.origin = Some(origin);
        self
    }

    /// The same, with these engine settings.
    #[must_use]
    pub fn with_config(mut self, config: SwarmConfig) -> Self {
        self.config = config;
        self
    }
}

impl fmt::Debug for TorrentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorrentSpec")
            .field("info_hash", &self.info.info_hash())
            .field("store", &self.store)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// An engine event of one torrent.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverEvent {
    /// The torrent.
    pub info_hash: InfoHash,
    /// What happened.
    pub event: Event,
}

/// The driver has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the driver has stopped")]
pub struct DriverClosed;

/// Why [`Handle::add_torrent`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AddTorrentError {
    /// The driver has stopped.
    #[error(transparent)]
    Closed(#[from] DriverClosed),
    /// The torrent is already running.
    #[error("torrent already added")]
    Duplicate,
    /// The store could not tell which pieces it holds.
    #[error("piece store: {0}")]
    Store(#[from] StoreError),
}

/// Why [`Handle::fetch_metadata`] gave no dictionary.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchMetadataError {
    /// The driver has stopped.
    #[error(transparent)]
    Closed(#[from] DriverClosed),
    /// The torrent is already running (or its metadata being fetched).
    #[error("torrent already added")]
    Duplicate,
    /// The dictionary peers gave hashes to the infohash but is not a usable
    /// info dictionary: the torrent itself is broken.
    #[error("the torrent's metadata is unusable: {0}")]
    Unusable(MetadataError),
    /// [`Handle::remove_torrent`] stopped the fetch first.
    #[error("the metadata fetch was stopped")]
    Stopped,
}

pub(super) enum Command {
    Add(
        Box<TorrentSpec>,
        oneshot::Sender<Result<Bitfield, AddTorrentError>>,
    ),
    FetchMetadata(InfoHash, oneshot::Sender<Result<Info, FetchMetadataError>>),
    Playback(InfoHash, Option<Playback>),
    Pause(InfoHash, bool),
    Stats(InfoHash, oneshot::Sender<Option<Stats>>),
    Peers(InfoHash, oneshot::Sender<Option<Vec<PeerSnapshot>>>),
    Remove(InfoHash, oneshot::Sender<bool>),
    UploadLimit(InfoHash, Option<u64>),
    Subscribe(mpsc::UnboundedSender<DriverEvent>),
    Shutdown,
}

/// Steers a running driver. Cheap to clone; the driver stops when the last
/// handle is dropped or [`shutdown`](Self::shutdown) is called.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::UnboundedSender<Command>,
}

impl Handle {
    pub(super) fn new(commands: mpsc::UnboundedSender<Command>) -> Self {
        Self { commands }
    }

    fn send(&self, command: Command) -> Result<(), DriverClosed> {
        self.commands
            .unbounded_send(command)
            .map_err(|_| DriverClosed)
    }

    /// Adds a torrent and starts it: the store is asked which pieces it
    /// holds (and re-verifies them if it persists), then the swarm starts and
    /// is announced. Returns the pieces held at start. A torrent whose
    /// metadata [`fetch_metadata`](Self::fetch_metadata) got starts on the
    /// fetch's connections, already announced.
    pub async fn add_torrent(&self, spec: TorrentSpec) -> Result<Bitfield, AddTorrentError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Add(Box::new(spec), reply))?;
        answer.await.map_err(|_| DriverClosed)?
    }

    /// Fetches the info dictionary of `info_hash` from the swarm's peers
    /// (BEP 9 `ut_metadata`; WebTorrent and chunkswarm peers serve it), for
    /// a magnet link without the `.torrent`'s URL. The torrent is announced
    /// and connected to like any other while this runs. Verified against
    /// the infohash, the dictionary comes back to be added with
    /// [`add_torrent`](Self::add_torrent); meanwhile the torrent stays
    /// parked, its connections open, so that the download starts on them
    /// without connecting again or announcing `started` a second time.
    /// A caller that does not add it calls
    /// [`remove_torrent`](Self::remove_torrent), which also stops a fetch
    /// under way. Peers whose copy is not the torrent's are dropped and
    /// banned on the way. It waits as long as it takes.
    pub async fn fetch_metadata(&self, info_hash: InfoHash) -> Result<Info, FetchMetadataError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::FetchMetadata(info_hash, reply))?;
        answer.await.map_err(|_| DriverClosed)?
    }

    /// Stops a torrent: announces `stopped`, closes its connections and
    /// HTTP requests, and forgets it (store writes under way still finish).
    /// Returns whether it was running; it may be added again afterwards.
    pub async fn remove_torrent(&self, info_hash: InfoHash) -> Result<bool, DriverClosed> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Remove(info_hash, reply))?;
        answer.await.map_err(|_| DriverClosed)
    }

    /// Moves the playhead (streaming, seeking) or stops streaming with `None`.
    pub fn set_playback(
        &self,
        info_hash: InfoHash,
        playback: Option<Playback>,
    ) -> Result<(), DriverClosed> {
        self.send(Command::Playback(info_hash, playback))
    }

    /// Stops (`true`) or resumes (`false`) requesting data for a torrent.
    pub fn pause(&self, info_hash: InfoHash, paused: bool) -> Result<(), DriverClosed> {
        self.send(Command::Pause(info_hash, paused))
    }

    /// The torrent's counters and rates now; `None` for an unknown torrent.
    pub async fn stats(&self, info_hash: InfoHash) -> Result<Option<Stats>, DriverClosed> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stats(info_hash, reply))?;
        answer.await.map_err(|_| DriverClosed)
    }

    /// The torrent's connections as a peer list shows them; `None` for an
    /// unknown torrent.
    pub async fn peers(
        &self,
        info_hash: InfoHash,
    ) -> Result<Option<Vec<PeerSnapshot>>, DriverClosed> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Peers(info_hash, reply))?;
        answer.await.map_err(|_| DriverClosed)
    }

    /// Caps the torrent's upload in bytes per second (`None`: unlimited).
    pub fn set_upload_limit(
        &self,
        info_hash: InfoHash,
        limit: Option<u64>,
    ) -> Result<(), DriverClosed> {
        self.send(Command::UploadLimit(info_hash, limit))
    }

    /// Every event of every torrent from now on. The stream ends when the
    /// driver stops; dropping it unsubscribes.
    pub fn events(&self) -> mpsc::UnboundedReceiver<DriverEvent> {
        let (sender, receiver) = mpsc::unbounded();
        let _ = self.send(Command::Subscribe(sender));
        receiver
    }

    /// Announces `stopped` for every torrent, closes every connection, and
    /// ends the driver future.
    pub fn shutdown(&self) {
        let _ = self.send(Command::Shutdown);
    }
}
