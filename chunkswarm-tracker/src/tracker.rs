//! The tracker's shared state and its handle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_rustls::rustls::ServerConfig;

use crate::catalog::{Catalog, LibraryCatalog};
use crate::cluster::{Alone, Cluster, ClusterHost, MemberReport, RedisCluster, Relay, Snapshot};
use crate::config::Config;
use crate::ice::{IceConfigError, IceIssuer};
use crate::library::Library;
use crate::limits::IpLimiter;
use crate::metrics::{Metrics, Rejection, add};
use crate::registry::{Registry, RelayedOffer};
use crate::signaling::ids::PeerId;
use crate::tls::{TlsError, server_config};
use crate::urls::Urls;
use chunkswarm_core::metainfo::InfoHash;

/// How often [`Tracker::maintain`] sweeps silent peers and idle addresses.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How often it looks for library files that have no torrent yet.
const WARM_EVERY: Duration = Duration::from_secs(60);

/// Why a [`Tracker`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// [`Config::piece_length`] is outside 1 byte to 64 MiB.
    #[error("piece length {0} is outside 1..={max}", max = chunkswarm_core::layout::MAX_PIECE_LENGTH)]
    PieceLength(u32),
    /// [`Config::redis`] is not a Redis URL.
    #[error("invalid Redis URL {url:?}: {message}")]
    Redis {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The media directory could not be opened.
    #[error("media directory {path}: {source}")]
    Media {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// [`Config::ice`] is not usable.
    #[error("ICE servers: {0}")]
    Ice(#[from] IceConfigError),
}

/// A handle to one tracker: cheap to clone, shared by every connection.
///
/// Build it with [`Tracker::new`], then either hand it to
/// [`serve`](crate::serve), which does everything, or mount
/// [`router`](crate::router) in your own server and spawn
/// [`Tracker::maintain`] beside it.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    registry: Mutex<Registry>,
    pub(crate) limiter: IpLimiter,
    pub(crate) metrics: Metrics,
    pub(crate) library: Option<Arc<Library>>,
    pub(crate) catalog: Arc<dyn Catalog>,
    pub(crate) cluster: Arc<dyn Cluster>,
    pub(crate) urls: Arc<Urls>,
    pub(crate) tls: Option<Arc<ServerConfig>>,
    /// Issues ICE servers and TURN credentials, if configured.
    pub(crate) ice: Option<IceIssuer>,
    pub(crate) shutdown: watch::Sender<bool>,
    next_conn: AtomicU64,
    /// Open WebSocket connections, and a signal when the last one closes.
    live: AtomicUsize,
    drained: Notify,
}

impl Tracker {
    /// A tracker with the catalog of its own media library.
    pub fn new(config: Config) -> Result<Self, TrackerError> {
        Self::build(config, None)
    }

    /// A tracker whose searches go to `catalog` instead of the library.
    pub fn with_catalog(config: Config, catalog: Arc<dyn Catalog>) -> Result<Self, TrackerError> {
        Self::build(config, Some(catalog))
    }

    fn build(config: Config, catalog: Option<Arc<dyn Catalog>>) -> Result<Self, TrackerError> {
        if !(1..=chunkswarm_core::layout::MAX_PIECE_LENGTH).contains(&config.piece_length) {
            return Err(TrackerError::PieceLength(config.piece_length));
        }
        let ice = match &config.ice {
            Some(ice) => Some(IceIssuer::new(ice, config.announce_interval)?),
            None => None,
        };
        let tls = match &config.tls {
            Some(files) => Some(server_config(&files.cert, &files.key)?),
            None => None,
        };
        let library = match &config.media_dir {
            Some(dir) => Some(Arc::new(Library::open(dir, config.piece_length).map_err(
                |source| TrackerError::Media {
                    path: dir.clone(),
                    source,
                },
            )?)),
            None => None,
        };
        let urls = Arc::new(Urls::new(config.public_url.as_deref()));
        let catalog = catalog
            .unwrap_or_else(|| Arc::new(LibraryCatalog::new(library.clone(), Arc::clone(&urls))));
        let mut registry = Registry::new(config.limits.clone());
        let cluster: Arc<dyn Cluster> = match &config.redis {
            Some(url) => Arc::new(RedisCluster::new(url, config.limits.peer_timeout).map_err(
                |e| TrackerError::Redis {
                    url: url.clone(),
                    message: e.to_string(),
                },
            )?),
            None => Arc::new(Alone),
        };
        if config.redis.is_some() {
            registry.record_changes();
        }
        let limits = &config.limits;
        let limiter = IpLimiter::new(
            limits.ip_requests_per_second,
            limits.ip_burst,
            limits.max_connections_per_ip,
        );
        let inner = Inner {
            registry: Mutex::new(registry),
            limiter,
            metrics: Metrics::default(),
            library,
            catalog,
            cluster,
            urls,
            tls,
            ice,
            shutdown: watch::channel(false).0,
            next_conn: AtomicU64::new(1),
            live: AtomicUsize::new(0),
            drained: Notify::new(),
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The public base URL written into torrents and API answers.
    pub fn public_url(&self) -> &str {
        self.inner.urls.base()
    }

    /// The WebSocket URL peers announce to: the public URL with `ws`/`wss`
    /// and `/announce`. Set from [`Config::public_url`], else from the
    /// address it serves on once [`serve`](crate::serve) or
    /// [`start`](Self::start) has begun.
    pub fn announce_url(&self) -> String {
        self.inner.urls.announce()
    }

    /// The origin (web seed) URL of a file of the media library, by its
    /// path below [`Config::media_dir`] (`/` between folders).
    pub fn media_url(&self, path: &str) -> String {
        self.inner.urls.media(path)
    }

    /// The URL of the `.torrent` the tracker makes for a file of the media
    /// library.
    pub fn torrent_url(&self, path: &str) -> String {
        self.inner.urls.torrent(path)
    }

    /// Whether it serves TLS.
    pub fn is_tls(&self) -> bool {
        self.inner.tls.is_some()
    }

    /// The metrics in Prometheus text form, as `GET /metrics` serves them.
    pub fn metrics_text(&self) -> String {
        let (swarms, peers) = self.inner.registry().totals();
        let cluster = self.inner.cluster.state();
        self.inner.metrics.render(swarms, peers, cluster)
    }

    /// Starts shutting down: WebSocket connections are closed (code 1001)
    /// and new ones refused. [`serve`](crate::serve) calls this when its
    /// shutdown future completes.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        // After the flag: a connection registered later sees the flag.
        self.inner.registry().shut_down_connections();
    }

    /// Housekeeping that must run while the tracker serves: drops peers that
    /// went silent, forgets idle addresses, and (see
    /// [`Config::prepare_torrents`]) makes the torrents of new library files
    /// so the catalog can show their infohash. Runs until
    /// [`shutdown`](Self::shutdown).
    pub async fn maintain(self) {
        // Loops in one task, so a long hashing run never delays a sweep.
        let cluster = async {
            let mut shutdown = self.inner.shutdown.subscribe();
            tokio::select! {
                _ = shutdown.wait_for(|&down| down) => {}
                () = self.inner.cluster.run(&*self.inner) => {}
            }
        };
        tokio::join!(
            self.every(SWEEP_EVERY, Self::sweep),
            self.every(WARM_EVERY, Self::warm_torrents),
            cluster,
        );
    }

    /// Runs `job` now and then every `period` until shutdown.
    async fn every<'a, F, Fut>(&'a self, period: Duration, job: F)
    where
        F: Fn(&'a Self) -> Fut,
        Fut: std::future::Future<Output = ()> + 'a,
    {
        let mut shutdown = self.inner.shutdown.subscribe();
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*shutdown.borrow_and_update() {
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = ticks.tick() => job(self).await,
            }
        }
    }

    /// Drops silent peers and forgets idle addresses.
    async fn sweep(&self) {
        let now = Instant::now();
        let dropped = self.inner.registry().sweep(now);
        if !dropped.is_empty() {
            tracing::debug!(dropped = dropped.len(), "dropped silent peers");
            self.inner.cluster.forget(Vec::new(), dropped);
        }
        self.inner.limiter.sweep(now);
    }

    /// Makes the torrent of every library file that has none yet.
    async fn warm_torrents(&self) {
        let Some(library) = &self.inner.library else {
            return;
        };
        if !self.inner.config.prepare_torrents {
            return;
        }
        for file in library.files().await.iter() {
            if *self.inner.shutdown.borrow() {
                return;
            }
            if library.torrents.peek(file).is_some() {
                continue;
            }
            let urls = &self.inner.urls;
            let built = &self.inner.metrics.torrents_built;
            if let Err(e) = library
                .torrents
                .get(file, &urls.announce(), &urls.media(&file.rel), built)
                .await
            {
                tracing::warn!(file = %file.rel, error = %e, "cannot make torrent");
            }
        }
    }
}

impl ClusterHost for Inner {
    fn snapshot(&self) -> Snapshot {
        self.registry().snapshot()
    }

    fn changed(&self) -> Vec<(InfoHash, PeerId, MemberReport)> {
        self.registry().take_changed()
    }

    fn deliver(&self, relay: Relay) {
        add(&self.metrics.relays_received, 1);
        let now = Instant::now();
        match relay {
            Relay::Offer {
                from_node,
                to,
                from,
                offer_id,
                info_hash,
                text,
            } => {
                let offer = RelayedOffer {
                    from_node,
                    to,
                    from,
                    offer_id,
                    info_hash,
                    text: &text,
                };
                if !self.registry().deliver_offer(offer, now) {
                    self.metrics.reject(Rejection::UnknownPeer);
                }
            }
            Relay::Answer { to, text } => {
                if !self.registry().deliver_answer(&to, &text) {
                    self.metrics.reject(Rejection::UnknownPeer);
                }
            }
        }
    }
}

impl Inner {
    /// The registry, locked. Held only for short, non-blocking updates.
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh connection id.
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts an open connection; false (and not counted) if at the limit.
    pub(crate) fn open_connection(&self) -> bool {
        let before = self.live.fetch_add(1, Ordering::AcqRel);
        if before >= self.config.limits.max_connections {
            self.close_connection();
            return false;
        }
        true
    }

    /// Uncounts a connection.
    pub(crate) fn close_connection(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }

    /// Waits until no WebSocket connection is open, at most `limit`.
    pub(crate) async fn drained(&self, limit: Duration) {
        let wait = async {
            loop {
                let notified = self.drained.notified();
                if self.live.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }

    /// Whether shutdown has started.
    pub(crate) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
