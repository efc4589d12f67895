//! The high-level client: add a torrent, watch it, wait for it.
//!
//! ```no_run
//! use chunkswarm_core::client::{Client, ClientConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::default());
//! // A path, an http(s) URL, a magnet link, or the bytes of a .torrent.
//! let torrent = client.add("https://media.example/torrents/film.webm.torrent").await?;
//! torrent.wait().await?; // every piece verified and flushed to disk
//! println!("{}", torrent.path().display());
//! # Ok(()) }
//! ```
//!
//! [`Client::add`] reads the torrent, opens its files (resuming from what
//! they hold), and starts it on the torrent's own trackers (the WebSocket
//! ones of `announce` and `announce-list`) and web seeds (`url-list`),
//! unless [`AddOptions`] names others. The returned [`Torrent`] gives the
//! progress (a stream of [events](Torrent::events) and a
//! [watchable state](Torrent::watch)), [`pause`](Torrent::pause),
//! [`resume`](Torrent::resume), [`seek`](Torrent::seek),
//! [`remove`](Torrent::remove) and [`wait`](Torrent::wait).
//!
//! A magnet link with an http(s) `xs` is read from that `.torrent`; one
//! without gets its metadata from the peers its WebSocket trackers
//! introduce (BEP 9, verified against the infohash), within
//! [`ClientConfig::metadata_timeout`], over the same tracker connection the
//! torrent then runs on.
//!
//! Defaults: each torrent gets a random peer id, so two clients in one
//! process meet each other; WebRTC binds every interface and takes its
//! STUN/TURN servers from the tracker; HTTP requests to a web seed may take
//! 30 s; a tracker that does not answer within
//! [`TRACKER_CONNECT_TIMEOUT`] is
//! reported as [`TrackerState::Failed`] (and an
//! [`Event::TrackerFailed`](crate::swarm::Event::TrackerFailed)) and tried
//! again with backoff, while the web seed carries on. A torrent with no
//! peer and no usable web seed (none, or one that keeps answering 404 or
//! 410) for [`SwarmConfig::no_source_timeout`](crate::swarm::SwarmConfig::no_source_timeout)
//! makes [`Torrent::wait`] fail with [`TorrentError::NoSourceLeft`]
//! instead of waiting forever; it keeps running, so a peer that comes later
//! still serves it.
//!
//! Every call here is async and none blocks the runtime: files are opened
//! and checked on tokio's blocking pool. It needs a multi-threaded or
//! current-thread tokio runtime with the `time` and `net` drivers.
//!
//! Underneath, each torrent runs on its own [driver](crate::driver) with the
//! [native adapter](crate::native); both stay public for programs that need
//! another store, signaling or connector.

mod source;
mod torrent;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::watch;

use futures::channel::mpsc::UnboundedReceiver;

use crate::driver::{
    AddTorrentError, DriverConfig, DriverEvent, DriverIo, Handle, HttpOrigin, PieceStore,
    StoreError, TorrentSpec, driver,
};
use crate::magnet::Magnet;
use crate::metainfo::{InfoHash, Metainfo};
use crate::native::{
    DiskStore, HttpWebSeed, TRACKER_CONNECT_TIMEOUT, TokioSleeper, WebRtcConfig, WebRtcConnector,
    tracker_link_to,
};
use crate::swarm::{Stats, SwarmConfig};

pub use source::{LoadError, MAX_TORRENT_BYTES, TorrentSource};
pub use torrent::{Torrent, TorrentError, TorrentState, TrackerState};

/// A client's settings. [`ClientConfig::default`] suits a program on a
/// desktop or server; [`ClientConfig::loopback`] suits tests.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Where content goes unless [`AddOptions::output`] says otherwise:
    /// `download_dir/<torrent name>`. Default: the current directory.
    pub download_dir: PathBuf,
    /// How WebRTC connections are made.
    pub webrtc: WebRtcConfig,
    /// The engine's settings for each torrent. Its `peer_id` and
    /// `rng_seed` are ignored: each torrent draws its own.
    pub swarm: SwarmConfig,
    /// How long one request to a web seed, or the fetch of a `.torrent`,
    /// may take. Default: 30 s.
    pub http_timeout: Duration,
    /// How long one attempt to connect to a tracker may take before it is
    /// reported failed. Default: [`TRACKER_CONNECT_TIMEOUT`].
    pub tracker_timeout: Duration,
    /// How long the metadata of a magnet link without `xs` may take to come
    /// from peers. Default: 2 minutes.
    pub metadata_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            download_dir: PathBuf::from("."),
            webrtc: WebRtcConfig::default(),
            swarm: SwarmConfig::default(),
            http_timeout: Duration::from_secs(30),
            tracker_timeout: TRACKER_CONNECT_TIMEOUT,
            metadata_timeout: Duration::from_secs(120),
        }
    }
}

impl ClientConfig {
    /// The defaults with WebRTC on 127.0.0.1 only, without mDNS: tests and
    /// one-machine demos.
    pub fn loopback() -> Self {
        Self {
            webrtc: WebRtcConfig::loopback(),
            ..Self::default()
        }
    }
}

/// Per-torrent choices for [`Client::add_with`]; the default takes
/// everything from the torrent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// Where the content goes (the file, or the folder of a multi-file
    /// torrent); existing content there is checked and kept. Default:
    /// [`ClientConfig::download_dir`] joined with the torrent's name.
    pub output: Option<PathBuf>,
    /// WebSocket trackers to use instead of the torrent's own.
    pub trackers: Option<Vec<String>>,
    /// Web seeds to use instead of the torrent's own (an empty list: none).
    pub web_seeds: Option<Vec<String>>,
}

impl AddOptions {
    /// The torrent's own trackers and web seeds, its content at `path`
    /// (the file, or the folder of a multi-file torrent).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            output: Some(path.into()),
            ..Self::default()
        }
    }
}

/// Why [`Client::add`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The torrent could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The content's files could not be opened or checked.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A web seed URL is not `http://` or `https://`.
    #[error("bad web seed: {0}")]
    BadWebSeed(String),
    /// A tracker URL is not `ws://` or `wss://`.
    #[error("bad tracker URL (ws:// or wss:// expected): {0}")]
    BadTracker(String),
    /// The content is incomplete and there is no tracker and no web seed
    /// to get the rest from.
    #[error("no source: the torrent names no WebSocket tracker and no web seed")]
    NoSource,
    /// This client already runs the torrent.
    #[error("torrent {0} is already added")]
    Duplicate(InfoHash),
    /// The torrent's task stopped before it started.
    #[error("the torrent's task stopped")]
    Stopped,
}

/// Runs torrents. Cheap to clone; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    connector: Arc<WebRtcConnector>,
    running: Arc<Mutex<BTreeMap<InfoHash, Weak<torrent::Shared>>>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new(ClientConfig::default())
    }
}

impl Client {
    /// A client with these settings. Starts nothing until [`add`](Self::add).
    pub fn new(config: ClientConfig) -> Self {
        Self {
            connector: Arc::new(WebRtcConnector::new(config.webrtc.clone())),
            config: Arc::new(config),
            running: Arc::default(),
        }
    }

    /// Adds a torrent with the default [`AddOptions`].
    pub async fn add(&self, source: impl Into<TorrentSource>) -> Result<Torrent, AddError> {
        self.add_with(source, AddOptions::default()).await
    }

    /// Reads the torrent, opens its content (checking what is already
    /// there, on the blocking pool), and starts it. Returns once it runs;
    /// a torrent whose content is already whole is complete at once.
    pub async fn add_with(
        &self,
        source: impl Into<TorrentSource>,
        options: AddOptions,
    ) -> Result<Torrent, AddError> {
        let source = source.into();
        let (meta, running) = match source.magnet_without_torrent_url()? {
            Some(magnet) => {
                let (meta, running) = self.fetch_metadata(&magnet, &options).await?;
                (meta, Some(running))
            }
            None => (source.load(self.config.http_timeout).await?, None),
        };
        let info_hash = meta.info_hash();
        if running.is_none() && self.is_running(info_hash) {
            return Err(AddError::Duplicate(info_hash));
        }
        let trackers = trackers(meta.trackers(), options.trackers)?;
        let origin = self.web_seed(&meta, options.web_seeds)?;
        let path = options
            .output
            .unwrap_or_else(|| self.config.download_dir.join(meta.info().name()));
        let store = open_store(path.clone(), &meta).await?;

        let (handle, events) = match running {
            Some(running) => running,
            None => self.start_driver(&trackers),
        };
        let no_source = trackers.is_empty() && origin.is_none();
        let spec = TorrentSpec {
            info: meta.info().clone(),
            store,
            origin,
            config: self.config.swarm.clone(),
        };
        let held = handle.add_torrent(spec).await.map_err(|e| match e {
            AddTorrentError::Store(e) => AddError::Store(e),
            AddTorrentError::Duplicate => AddError::Duplicate(info_hash),
            AddTorrentError::Closed(_) => AddError::Stopped,
        })?;
        if no_source && !held.is_full() {
            handle.shutdown();
            return Err(AddError::NoSource);
        }
        let layout = meta.info().layout();
        let verified_bytes = held
            .iter_ones()
            .map(|p| u64::from(layout.piece_len(p)))
            .sum();
        let state = TorrentState {
            stats: Stats {
                total_bytes: layout.total_length(),
                verified_bytes,
                pieces_verified: held.count_ones(),
                pieces_total: layout.piece_count(),
                ..Stats::default()
            },
            complete: held.is_full(),
            paused: false,
            tracker: if trackers.is_empty() {
                TrackerState::None
            } else {
                TrackerState::Connecting
            },
            error: None,
        };
        let state = Arc::new(watch::Sender::new(state));
        tokio::spawn(follow(events, state.clone()));
        let shared = Arc::new(torrent::Shared {
            meta,
            path,
            driver: handle,
            state,
        });
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(info_hash, Arc::downgrade(&shared));
        Ok(Torrent { shared })
    }

    /// A driver on these trackers (none: no signaling), and its events.
    fn start_driver(&self, trackers: &[String]) -> (Handle, UnboundedReceiver<DriverEvent>) {
        let io = DriverIo {
            signaling: (!trackers.is_empty())
                .then(|| tracker_link_to(trackers, self.config.tracker_timeout)),
            connector: Some(self.connector.clone()),
            sleeper: Arc::new(TokioSleeper),
        };
        let (handle, run) = driver(DriverConfig::default(), io);
        let events = handle.events();
        tokio::spawn(run);
        (handle, events)
    }

    /// Gets a magnet link's metadata from the peers of its trackers (or
    /// those chosen), on a driver the torrent then runs on.
    async fn fetch_metadata(
        &self,
        magnet: &Magnet,
        options: &AddOptions,
    ) -> Result<(Metainfo, (Handle, UnboundedReceiver<DriverEvent>)), AddError> {
        let info_hash = magnet.info_hash();
        if self.is_running(info_hash) {
            return Err(AddError::Duplicate(info_hash));
        }
        let own = magnet.trackers().iter().map(String::as_str).collect();
        let trackers = trackers(own, options.trackers.clone())?;
        if trackers.is_empty() {
            return Err(LoadError::MagnetWithoutSource.into());
        }
        let (handle, events) = self.start_driver(&trackers);
        let timeout = self.config.metadata_timeout;
        let fetched = tokio::time::timeout(timeout, handle.fetch_metadata(info_hash)).await;
        let info = match fetched {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                handle.shutdown();
                return Err(LoadError::Metadata(e).into());
            }
            Err(_) => {
                handle.shutdown();
                return Err(LoadError::MetadataTimeout(timeout).into());
            }
        };
        let meta = magnet
            .resolve(Metainfo::from_info(info))
            .map_err(LoadError::from)?;
        Ok((meta, (handle, events)))
    }

    fn is_running(&self, info_hash: InfoHash) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|_, t| {
            t.upgrade()
                .is_some_and(|t| t.state.borrow().error != Some(TorrentError::Removed))
        });
        running.contains_key(&info_hash)
    }

    fn web_seed(
        &self,
        meta: &Metainfo,
        chosen: Option<Vec<String>>,
    ) -> Result<Option<Arc<dyn HttpOrigin>>, AddError> {
        let explicit = chosen.is_some();
        let urls = chosen.unwrap_or_else(|| meta.web_seeds().to_vec());
        for url in urls {
            match HttpWebSeed::for_torrent(&url, meta.info(), self.config.http_timeout) {
                Ok(seed) => return Ok(Some(Arc::new(seed))),
                // A torrent's own list may hold seeds of other kinds: skip them.
                Err(_) if !explicit => {}
                Err(_) => return Err(AddError::BadWebSeed(url)),
            }
        }
        Ok(None)
    }
}

/// The WebSocket trackers to use: the chosen ones, else the torrent's own.
fn trackers(own: Vec<&str>, chosen: Option<Vec<String>>) -> Result<Vec<String>, AddError> {
    let is_ws = |url: &str| url.starts_with("ws://") || url.starts_with("wss://");
    match chosen {
        Some(urls) => match urls.iter().find(|u| !is_ws(u)) {
            Some(bad) => Err(AddError::BadTracker(bad.clone())),
            None => Ok(urls),
        },
        None => Ok(own
            .into_iter()
            .filter(|u| is_ws(u))
            .map(str::to_owned)
            .collect()),
    }
}

/// Opens the content's files on the blocking pool ([`DiskStore::open`] blocks).
async fn open_store(path: PathBuf, meta: &Metainfo) -> Result<Arc<dyn PieceStore>, AddError> {
    let info = meta.info().clone();
    let opened = tokio::task::spawn_blocking(move || DiskStore::open(path, &info)).await;
    match opened {
        Ok(store) => Ok(Arc::new(store?)),
        Err(e) => Err(AddError::Store(StoreError::io(std::io::Error::other(e)))),
    }
}

/// Keeps the state up to date from the torrent's events until it stops.
async fn follow(
    mut events: futures::channel::mpsc::UnboundedReceiver<crate::driver::DriverEvent>,
    state: Arc<watch::Sender<TorrentState>>,
) {
    while let Some(event) = events.next().await {
        state.send_if_modified(|s| torrent::apply(s, event));
    }
    state.send_if_modified(|s| {
        if s.complete || s.error.is_some() {
            return false;
        }
        s.error = Some(TorrentError::Stopped(crate::driver::DriverClosed));
        true
    });
}
