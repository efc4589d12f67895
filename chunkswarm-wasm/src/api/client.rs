//! The `Client` class: one driver with its tracker connection, its torrents
//! and its event listeners.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use chunkswarm_core::driver::{
    DriverConfig, DriverEvent, DriverIo, Handle, HttpOrigin, PeerConnector, TorrentSpec, driver,
};
use chunkswarm_core::magnet::Magnet;
use chunkswarm_core::metainfo::{InfoHash, MAX_METAINFO_LEN, Metainfo};
use chunkswarm_core::pick::Strategy;
use chunkswarm_core::swarm::SwarmConfig;
use futures::channel::{mpsc, oneshot};
use futures::future::{FutureExt as _, Shared};
use futures::{StreamExt as _, stream};
use tracing::Instrument as _;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise, spawn_local};

use super::options::{ClientOptions, TorrentOptions};
use super::storage::{self, StorageMode, WorkerSlot};
use super::to_js;
use super::torrent::{Torrent, TorrentShared, stop};
use crate::model::{ClientEvent, LogLevel};
use crate::peer_id::display_peer_id;
use crate::store::opfs::StoreNotice;
use crate::web::http::FetchWebSeed;
use crate::web::log::{self, LogSink};
use crate::web::rtc::{RtcSettings, WebRtcConnector};
use crate::web::sleep::{Timeout, TimeoutSleeper};
use crate::web::tracker::connect_tracker;
use crate::web::{fetch_request, js_error, random_bytes};

/// How long one web-seed request may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of pieces a torrent keeps in memory to serve peers (`memoryCache`).
const DEFAULT_MEMORY_CACHE: u64 = 8 << 20;

thread_local! {
    static NEXT_CLIENT: Cell<u64> = const { Cell::new(1) };
}

/// A client's torrents by info hash.
pub(crate) type Torrents = BTreeMap<InfoHash, Rc<TorrentShared>>;

struct ClientInner {
    handle: Handle,
    /// A tracker URL was given: peers can be met (and asked for metadata).
    has_tracker: bool,
    peer_id: [u8; 20],
    upload_limit: Option<u64>,
    max_peers: Option<usize>,
    listeners: RefCell<Vec<js_sys::Function>>,
    torrents: Rc<RefCell<Torrents>>,
    stopped: Shared<oneshot::Receiver<()>>,
    log: LogSink,
    storage_mode: StorageMode,
    memory_cache: u64,
    opfs: WorkerSlot,
    notices: mpsc::UnboundedSender<StoreNotice>,
}

/// Hands an event to the listeners of the client and of one torrent.
#[derive(Clone)]
pub(crate) struct Dispatch(Weak<ClientInner>);

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dispatch")
    }
}

impl Dispatch {
    pub(crate) fn send(&self, torrent: &TorrentShared, event: &ClientEvent) {
        if let Some(client) = self.0.upgrade() {
            client.dispatch(Some(torrent), event);
        }
    }
}

/// A chunkswarm client: a driver, a tracker connection and its torrents
/// (see the crate docs for the contract).
#[wasm_bindgen]
pub struct Client {
    inner: Rc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer_id", &display_peer_id(&self.inner.peer_id))
            .finish_non_exhaustive()
    }
}

fn js(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

#[wasm_bindgen]
impl Client {
    /// Starts a client: connects to `trackerUrl` (none: web seeds only) and
    /// runs its driver until `destroy()`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<Client, JsError> {
        let options = ClientOptions::parse(&options)?;
        let storage_mode = StorageMode::parse(options.storage.as_deref())?;
        log::install();
        let id = NEXT_CLIENT.with(|n| n.replace(n.get() + 1));
        let (log_tx, log_rx) = mpsc::unbounded::<ClientEvent>();
        let sink = LogSink::new(log_tx);
        let seed: [u8; 8] = random_bytes().map_err(|e| JsError::new(&js_error(&e)))?;
        // `-CS0001-` and twelve letters or digits drawn from the seed.
        let mut config = DriverConfig::seeded(u64::from_le_bytes(seed));
        let peer_id = config.peer_id;

        let (signaling, tracker) = match &options.tracker_url {
            Some(url) => {
                let (link, control) = connect_tracker(url, sink.clone())
                    .map_err(|e| JsError::new(&format!("tracker URL {url}: {}", js_error(&e))))?;
                (Some(link), Some(control))
            }
            None => (None, None),
        };
        let settings = RtcSettings {
            ice_servers: options.ice_servers.clone(),
            relay_only: options.relay_only,
            ..RtcSettings::default()
        };
        if let Some(servers) = &settings.ice_servers {
            // Refuse bad ICE server entries here, not on every connection.
            let config = web_sys::RtcConfiguration::new();
            config.set_ice_servers(servers);
            let probe = web_sys::RtcPeerConnection::new_with_configuration(&config)
                .map_err(|e| JsError::new(&format!("iceServers: {}", js_error(&e))))?;
            probe.close();
        }
        // Single-threaded wasm32: the driver's `Arc`s never cross threads.
        #[allow(clippy::arc_with_non_send_sync)]
        let connector: Arc<dyn PeerConnector> =
            Arc::new(WebRtcConnector::new(settings, Some(sink.clone())));
        let max_peers = options.max_connections.map(|n| n.clamp(1, 10_000) as usize);
        if let Some(max) = max_peers {
            config.max_connections = max;
        }
        let has_tracker = signaling.is_some();
        let io = DriverIo {
            signaling,
            connector: Some(connector),
            sleeper: Arc::new(TimeoutSleeper),
        };
        let (handle, running) = driver(config, io);
        let events = handle.events();
        let (stopped_tx, stopped) = oneshot::channel();
        log::register(id, sink.clone());
        spawn_local(
            async move {
                running.await;
                if let Some(tracker) = tracker {
                    tracker.close();
                }
                log::unregister(id);
                let _ = stopped_tx.send(());
            }
            .instrument(log::client_span(id)),
        );
        let (notices, notices_rx) = mpsc::unbounded();
        let inner = Rc::new(ClientInner {
            handle,
            has_tracker,
            peer_id,
            upload_limit: options.upload_limit,
            max_peers,
            listeners: RefCell::new(Vec::new()),
            torrents: Rc::new(RefCell::new(BTreeMap::new())),
            stopped: stopped.shared(),
            log: sink,
            storage_mode,
            memory_cache: options.memory_cache.unwrap_or(DEFAULT_MEMORY_CACHE),
            opfs: RefCell::new(None),
            notices,
        });
        spawn_local(dispatch(Rc::downgrade(&inner), events, log_rx, notices_rx));
        Ok(Client { inner })
    }

    /// Our peer id as text (`-CS0001-` and twelve random characters).
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        display_peer_id(&self.inner.peer_id)
    }

    /// Calls `listener` with every event of every torrent (and client-wide
    /// log lines) from now on.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ClientEvent) => void")]
        listener: js_sys::Function,
    ) {
        self.inner.listeners.borrow_mut().push(listener);
    }

    /// Adds a torrent from the URL of a `.torrent`, its bytes, or a magnet
    /// link (its `.torrent` from its `xs`, or else its metadata from peers
    /// met through the client's tracker), and starts downloading and
    /// seeding it.
    #[wasm_bindgen(js_name = addTorrent, unchecked_return_type = "Promise<Torrent>")]
    pub fn add_torrent(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TorrentOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let options = TorrentOptions::parse(&options)?;
            let magnet = source.as_string().filter(|s| {
                s.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
            });
            if let Some(link) = magnet {
                let meta = load_magnet(&inner, &link).await?;
                let info_hash = meta.info_hash();
                let started = inner
                    .clone()
                    .start(meta.clone(), &meta.to_bytes(), options)
                    .await;
                // The fetch's connections wait in the driver for the download
                // (it starts on them); if it does not start, they are dropped.
                if started.is_err() && !inner.torrents.borrow().contains_key(&info_hash) {
                    let _ = inner.handle.remove_torrent(info_hash).await;
                }
                return started;
            }
            let bytes = load_metainfo(&source).await?;
            let meta = Metainfo::from_bytes(&bytes).map_err(|e| js(format!("bad torrent: {e}")))?;
            inner.start(meta, &bytes, options).await
        })
    }

    /// The torrents stored in this origin's OPFS, with the bytes each
    /// holds, and the origin's storage quota and usage.
    #[wasm_bindgen(unchecked_return_type = "Promise<StorageInfo>")]
    pub fn storage(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let info = storage::list(&inner.opfs).await.map_err(js)?;
            Ok(to_js(&info))
        })
    }

    /// Deletes a stored torrent (its pieces and resume state), stopping it
    /// first if this client runs it. Rejects if another tab has it open.
    #[wasm_bindgen(js_name = removeStored, unchecked_return_type = "Promise<void>")]
    pub fn remove_stored(&self, info_hash: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let hash = InfoHash::from_hex(&info_hash)
                .ok_or_else(|| js(format!("not an info hash: {info_hash:?}")))?;
            let running = inner.torrents.borrow().get(&hash).cloned();
            if let Some(shared) = running {
                stop(&shared, &inner.handle, &Rc::downgrade(&inner.torrents)).await?;
            }
            storage::remove(&inner.opfs, &hash.to_hex())
                .await
                .map_err(|e| js(format!("cannot remove {info_hash}: {e}")))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Announces `stopped`, closes every channel and the tracker connection,
    /// and resolves when the driver has ended. Pending `read`s reject.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn destroy(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.handle.shutdown();
            let _ = inner.stopped.clone().await;
            let torrents: Vec<_> = inner.torrents.borrow().values().cloned().collect();
            for torrent in torrents {
                torrent.storage.close().await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }
}

impl ClientInner {
    async fn start(
        self: Rc<Self>,
        meta: Metainfo,
        torrent_bytes: &[u8],
        options: TorrentOptions,
    ) -> Result<JsValue, JsValue> {
        let info = meta.info().clone();
        let info_hash = info.info_hash();
        let strategy = match options.strategy.as_deref() {
            None | Some("streaming") => Strategy::Streaming,
            Some("rarest") => Strategy::RarestFirst,
            Some("sequential") => Strategy::Sequential,
            Some(other) => return Err(js(format!("unknown strategy `{other}`"))),
        };
        let web_seed = options.web_seed.unwrap_or_else(|| {
            meta.web_seeds()
                .iter()
                .find(|url| url.starts_with("http://") || url.starts_with("https://"))
                .cloned()
        });
        if self.torrents.borrow().contains_key(&info_hash) {
            return Err(js("torrent already added"));
        }
        let opened = storage::open(
            self.storage_mode,
            &self.opfs,
            &info,
            torrent_bytes,
            self.notices.clone(),
        )
        .await?;
        if self.torrents.borrow().contains_key(&info_hash) {
            // Added again while the store opened.
            opened.storage.close().await;
            return Err(js("torrent already added"));
        }
        let shared = Rc::new(TorrentShared::new(info.clone(), opened.storage));
        // Registered before the driver starts it, so no early event is missed.
        self.torrents.borrow_mut().insert(info_hash, shared.clone());
        let origin = web_seed.as_deref().map(|url| {
            Arc::new(FetchWebSeed::for_torrent(url, &info, HTTP_TIMEOUT)) as Arc<dyn HttpOrigin>
        });
        let piece_length = u64::from(info.layout().piece_length()).max(1);
        let mut config = SwarmConfig {
            strategy,
            upload_rate_limit: self.upload_limit,
            piece_cache: usize::try_from(self.memory_cache / piece_length)
                .unwrap_or(1)
                .max(1),
            ..SwarmConfig::default()
        };
        if let Some(max) = self.max_peers {
            config.max_peers = max;
        }
        let spec = TorrentSpec {
            info,
            store: shared.storage.piece_store(),
            origin,
            config,
        };
        let full = opened.state != "ready";
        match self.handle.add_torrent(spec).await {
            Ok(held) => {
                if full {
                    // Nothing can be written: wait for `resume()` after space is freed.
                    let _ = self.handle.pause(info_hash, true);
                }
                shared.mark_held(held.iter_ones().map(|p| p.get()));
                self.log.log(
                    LogLevel::Info,
                    Some(info_hash.to_hex()),
                    format!(
                        "torrent added: {} ({} pieces, {} of them stored, web seed {}, pieces kept in {}{})",
                        shared.info.name(),
                        shared.info.layout().piece_count(),
                        held.count_ones(),
                        web_seed.as_deref().unwrap_or("none"),
                        shared.storage.kind(),
                        opened.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
                    ),
                );
                self.dispatch(
                    Some(&shared),
                    &shared.storage_event(opened.state, opened.reason),
                );
                Ok(Torrent {
                    shared,
                    handle: self.handle.clone(),
                    registry: Rc::downgrade(&self.torrents),
                    dispatch: Dispatch(Rc::downgrade(&self)),
                }
                .into())
            }
            Err(e) => {
                self.torrents.borrow_mut().remove(&info_hash);
                shared.storage.close().await;
                Err(js(e))
            }
        }
    }

    /// The storage of a torrent refused a write: pause it and say so.
    fn storage_failed(&self, notice: &StoreNotice) {
        let Some(torrent) = self.torrents.borrow().get(&notice.info_hash).cloned() else {
            return;
        };
        let _ = self.handle.pause(notice.info_hash, true);
        let state = if notice.error.is_quota() {
            "full"
        } else {
            "failed"
        };
        let reason = format!(
            "{}; the torrent is paused, verified pieces wait in memory: free space and resume",
            notice.error
        );
        self.log.log(
            LogLevel::Warn,
            Some(notice.info_hash.to_hex()),
            format!("storage {state}: {reason}"),
        );
        self.dispatch(Some(&torrent), &torrent.storage_event(state, Some(reason)));
    }

    /// Hands one event to the client's and its torrent's listeners.
    fn dispatch(&self, torrent: Option<&TorrentShared>, event: &ClientEvent) {
        let value = to_js(event);
        let listeners = self.listeners.borrow().clone();
        let own = torrent
            .map(|t| t.listeners.borrow().clone())
            .unwrap_or_default();
        for listener in listeners.iter().chain(&own) {
            // A throwing listener must not stop the others.
            let _ = listener.call1(&JsValue::NULL, &value);
        }
    }
}

/// Delivers driver events and log lines to listeners until the client is gone.
async fn dispatch(
    client: Weak<ClientInner>,
    events: mpsc::UnboundedReceiver<DriverEvent>,
    logs: mpsc::UnboundedReceiver<ClientEvent>,
    notices: mpsc::UnboundedReceiver<StoreNotice>,
) {
    enum Next {
        Driver(DriverEvent),
        Log(ClientEvent),
        Storage(StoreNotice),
    }
    let mut merged = stream::select(
        stream::select(events.map(Next::Driver), logs.map(Next::Log)),
        notices.map(Next::Storage),
    );
    while let Some(next) = merged.next().await {
        let Some(client) = client.upgrade() else {
            break;
        };
        match next {
            Next::Driver(DriverEvent { info_hash, event }) => {
                let torrent = client.torrents.borrow().get(&info_hash).cloned();
                if let Some(torrent) = &torrent {
                    torrent.apply(&event);
                }
                let event = ClientEvent::from_engine(info_hash, &event);
                client.dispatch(torrent.as_deref(), &event);
            }
            Next::Storage(notice) => client.storage_failed(&notice),
            Next::Log(event) => {
                let torrent = event
                    .info_hash()
                    .and_then(InfoHash::from_hex)
                    .and_then(|h| client.torrents.borrow().get(&h).cloned());
                client.dispatch(torrent.as_deref(), &event);
            }
        }
    }
}

/// How long a magnet link's metadata may take to come from peers.
const METADATA_TIMEOUT: Duration = Duration::from_secs(120);

/// The torrent of a magnet link, fetched from the link's first `xs` that
/// serves it, or else its metadata from peers (BEP 9, verified against the
/// infohash), with the link's trackers and web seeds added.
async fn load_magnet(inner: &ClientInner, link: &str) -> Result<Metainfo, JsValue> {
    let magnet = Magnet::parse(link).map_err(|e| js(format!("bad magnet link: {e}")))?;
    if magnet.sources().is_empty() {
        return metadata_from_peers(inner, &magnet).await;
    }
    let mut failures = Vec::new();
    for url in magnet.sources() {
        let found = match load_metainfo(&JsValue::from_str(url)).await {
            Ok(bytes) => Metainfo::from_bytes(&bytes)
                .map_err(|e| format!("{url}: bad torrent: {e}"))
                .and_then(|meta| magnet.resolve(meta).map_err(|e| format!("{url}: {e}"))),
            Err(e) => Err(js_error(&e)),
        };
        match found {
            Ok(meta) => return Ok(meta),
            Err(e) => failures.push(e),
        }
    }
    Err(js(format!(
        "no source of the magnet link gave its torrent: {}",
        failures.join("; ")
    )))
}

/// A magnet link's torrent from its metadata, fetched from the peers the
/// client's tracker introduces, within [`METADATA_TIMEOUT`]. The torrent
/// then waits in the driver with the fetch's connections, for the download
/// to start on them ([`Handle::fetch_metadata`]); on failure it is removed.
///
/// [`Handle::fetch_metadata`]: chunkswarm_core::driver::Handle::fetch_metadata
async fn metadata_from_peers(inner: &ClientInner, magnet: &Magnet) -> Result<Metainfo, JsValue> {
    if !inner.has_tracker {
        return Err(js(
            "the magnet link has no `xs` (the URL of its .torrent), and without a \
             trackerUrl no peer can give its metadata",
        ));
    }
    let info_hash = magnet.info_hash();
    if inner.torrents.borrow().contains_key(&info_hash) {
        return Err(js(format!("torrent {info_hash} is already added")));
    }
    inner.log.log(
        LogLevel::Info,
        Some(info_hash.to_hex()),
        format!("fetching the metadata of {info_hash} from peers"),
    );
    let fetch = inner.handle.fetch_metadata(info_hash).fuse();
    let timeout = Timeout::new(METADATA_TIMEOUT).fuse();
    futures::pin_mut!(fetch, timeout);
    let info = futures::select! {
        fetched = fetch => fetched.map_err(|e| js(format!("metadata from peers: {e}")))?,
        () = timeout => {
            let _ = inner.handle.remove_torrent(info_hash).await;
            return Err(js(format!(
                "no peer gave the torrent's metadata within {} s",
                METADATA_TIMEOUT.as_secs()
            )));
        }
    };
    let resolved = magnet.resolve(Metainfo::from_info(info));
    if resolved.is_err() {
        let _ = inner.handle.remove_torrent(info_hash).await;
    }
    resolved.map_err(|e| js(format!("metadata from peers: {e}")))
}

/// The `.torrent` bytes: given, or fetched from a URL (at most
/// [`MAX_METAINFO_LEN`] bytes either way).
async fn load_metainfo(source: &JsValue) -> Result<Vec<u8>, JsValue> {
    let too_big = || js(format!("a .torrent is at most {MAX_METAINFO_LEN} bytes"));
    if let Some(array) = source.dyn_ref::<js_sys::Uint8Array>() {
        if array.length() as usize > MAX_METAINFO_LEN {
            return Err(too_big());
        }
        return Ok(array.to_vec());
    }
    let Some(url) = source.as_string() else {
        return Err(js("addTorrent takes a URL string or a Uint8Array"));
    };
    let request = web_sys::Request::new_with_str(&url).map_err(|e| js(js_error(&e)))?;
    let response: web_sys::Response = JsFuture::from(fetch_request(&request))
        .await
        .map_err(|e| js(format!("fetching {url}: {}", js_error(&e))))?
        .dyn_into()?;
    if !response.ok() {
        return Err(js(format!("fetching {url}: HTTP {}", response.status())));
    }
    let declared = response
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_METAINFO_LEN) {
        return Err(too_big());
    }
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    let array = js_sys::Uint8Array::new(&buffer);
    if array.length() as usize > MAX_METAINFO_LEN {
        return Err(too_big());
    }
    Ok(array.to_vec())
}
