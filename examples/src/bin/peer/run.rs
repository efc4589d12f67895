//! The two commands: start a driver on one torrent, watch it, report.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkswarm_core::driver::{
    DriverConfig, DriverEvent, DriverIo, Handle, HttpOrigin, PieceStore, TorrentSpec, driver,
};
use chunkswarm_core::metainfo::{Info, Metainfo, TorrentBuilder};
use chunkswarm_core::native::{
    DiskStore, HttpWebSeed, IceServer, TokioSleeper, WebRtcConfig, WebRtcConnector,
    connect_tracker, entropy_seed, tracker_link,
};
use chunkswarm_core::piece_map::Bitfield;
use chunkswarm_core::swarm::{Event, Stats};
use futures::StreamExt as _;
use futures::channel::mpsc::UnboundedReceiver;

use crate::cli::{Common, FetchArgs, SeedArgs};
use crate::progress::Progress;
use crate::source::{
    RunningDriver, load_torrent, magnet_without_torrent_url, metadata_from_peers, tracker, web_seed,
};
use crate::summary::Summary;
use chunkswarm_core::magnet::Magnet;

const WEB_SEED_TIMEOUT: Duration = Duration::from_secs(30);
const REFRESH: Duration = Duration::from_millis(250);

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Complete,
    Incomplete,
    Interrupted,
}

pub(crate) async fn seed(args: SeedArgs, common: Common) -> Result<Outcome, String> {
    let file = &args.file;
    let metadata =
        std::fs::metadata(file).map_err(|e| format!("cannot seed {}: {e}", file.display()))?;
    if !metadata.is_file() && !metadata.is_dir() {
        return Err(format!("{} is not a file or folder", file.display()));
    }
    let meta = match &args.torrent {
        Some(location) => load_torrent(location).await?,
        None => create_torrent(file, &common, args.piece_length)?,
    };
    let info = meta.info();
    if info.is_multi_file() != metadata.is_dir() {
        return Err(format!(
            "{} is a {} but the torrent describes a {}",
            file.display(),
            if metadata.is_dir() { "folder" } else { "file" },
            if info.is_multi_file() {
                "folder"
            } else {
                "file"
            },
        ));
    }
    if metadata.is_file() && metadata.len() != info.total_length() {
        return Err(format!(
            "{} is {} bytes but the torrent describes {} bytes",
            file.display(),
            metadata.len(),
            info.total_length()
        ));
    }
    if tracker(&common, &meta)?.is_none() {
        return Err(
            "seeding needs a tracker: the torrent names no ws(s):// tracker; \
                    give --tracker"
                .to_owned(),
        );
    }
    let mut session = Session::start(&common, &meta, file, "seed", None).await?;
    if !session.held.is_full() {
        let bad = info.layout().piece_count() - session.held.count_ones();
        session.stop().await;
        return Err(format!(
            "{} does not match the torrent: {bad} of {} pieces differ",
            file.display(),
            info.layout().piece_count()
        ));
    }
    eprintln!(
        "seeding {} ({}) until {}",
        info.name(),
        info.info_hash(),
        match args.duration {
            Some(s) => format!("{s} s have passed"),
            None => "Ctrl-C".to_owned(),
        }
    );
    let mut magnet = Magnet::from_metainfo(&meta);
    if let Some(url) = args.torrent.as_ref().filter(|t| t.starts_with("http")) {
        magnet = magnet.with_source(url.clone());
    }
    eprintln!("magnet: {magnet}");
    let deadline = args.duration.map(seconds);
    let outcome = session.watch(Watch::Seed { deadline }).await;
    let summary = session.finish("seed").await;
    summary.print(common.json);
    Ok(match outcome {
        Outcome::Interrupted => Outcome::Interrupted,
        _ if summary.complete => Outcome::Complete,
        _ => Outcome::Incomplete,
    })
}

/// How long a magnet link's metadata may take to come from peers unless
/// `--timeout` says otherwise.
const METADATA_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) async fn fetch(args: FetchArgs, common: Common) -> Result<Outcome, String> {
    let (meta, fetched_on) = match magnet_without_torrent_url(&args.torrent)? {
        Some(magnet) => {
            let timeout = args.timeout.map_or(METADATA_TIMEOUT, |s| {
                Duration::from_secs_f64(s.clamp(0.0, 1e9))
            });
            let (meta, running) = metadata_from_peers(&magnet, &common, timeout).await?;
            (meta, Some(running))
        }
        None => (load_torrent(&args.torrent).await?, None),
    };
    let info = meta.info();
    let path = output_path(&args.output, info)?;
    if tracker(&common, &meta)?.is_none() && web_seed(&common, &meta).is_none() {
        return Err(
            "nothing to fetch from: the torrent names no ws(s):// tracker and no \
                    web seed; give --tracker or --web-seed"
                .to_owned(),
        );
    }
    let mut session = Session::start(&common, &meta, &path, "fetch", fetched_on).await?;
    let deadline = args.timeout.map(seconds);
    let mut outcome = if session.held.is_full() {
        Outcome::Complete
    } else {
        session.watch(Watch::Fetch { deadline }).await
    };
    if outcome == Outcome::Complete && args.seed_time > 0.0 {
        let until = Some(seconds(args.seed_time));
        if session.watch(Watch::Seed { deadline: until }).await == Outcome::Interrupted {
            outcome = Outcome::Interrupted;
        }
    }
    let summary = session.finish("fetch").await;
    summary.print(common.json);
    Ok(match outcome {
        Outcome::Interrupted => Outcome::Interrupted,
        _ if summary.complete => Outcome::Complete,
        _ => Outcome::Incomplete,
    })
}

fn seconds(s: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(s.clamp(0.0, 1e9))
}

/// Makes a torrent for `file` and writes it to `FILE.torrent`.
fn create_torrent(file: &Path, common: &Common, piece_length: u32) -> Result<Metainfo, String> {
    let mut builder = TorrentBuilder::new().piece_length(piece_length);
    if let Some(url) = &common.tracker {
        builder = builder.announce(url.clone());
    }
    if let Some(url) = &common.web_seed {
        builder = builder.web_seed(url.clone());
    }
    let meta = builder
        .build_from_path(file)
        .map_err(|e| format!("cannot make a torrent of {}: {e}", file.display()))?;
    let mut torrent_path = file.as_os_str().to_owned();
    torrent_path.push(".torrent");
    let torrent_path = PathBuf::from(torrent_path);
    std::fs::write(&torrent_path, meta.to_bytes())
        .map_err(|e| format!("cannot write {}: {e}", torrent_path.display()))?;
    eprintln!("wrote {}", torrent_path.display());
    Ok(meta)
}

/// `-o OUT`: the file (or a multi-file torrent's folder) itself, or the
/// torrent's name inside an existing directory.
fn output_path(output: &Path, info: &Info) -> Result<PathBuf, String> {
    if !output.is_dir() {
        return Ok(output.to_owned());
    }
    let name = Path::new(info.name());
    let mut components = name.components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Ok(output.join(name)),
        _ => Err(format!(
            "the torrent's name {:?} is not a plain file name; give -o the path to write",
            info.name()
        )),
    }
}

/// A driver on the torrent's tracker (none: no signaling, no connector).
async fn start_driver(common: &Common, meta: &Metainfo) -> Result<RunningDriver, String> {
    let signaling = match tracker(common, meta)? {
        None => None,
        Some(url) => Some(match connect_tracker(&url).await {
            Ok(link) => link,
            Err(e) => {
                eprintln!("peer: {e}; going on without peers, retrying the tracker");
                tracker_link(&url)
            }
        }),
    };
    let io = DriverIo {
        connector: signaling
            .is_some()
            .then(|| Arc::new(WebRtcConnector::new(webrtc_config(common))) as _),
        signaling,
        sleeper: Arc::new(TokioSleeper),
    };
    let (handle, future) = driver(DriverConfig::seeded(entropy_seed()), io);
    let task = tokio::spawn(future);
    Ok(RunningDriver { handle, task })
}

/// What [`Session::watch`] waits for.
enum Watch {
    /// Until every piece is verified, or the deadline.
    Fetch { deadline: Option<Instant> },
    /// Until the deadline (or forever), serving.
    Seed { deadline: Option<Instant> },
}

/// One torrent on a running driver.
struct Session {
    handle: Handle,
    driver: tokio::task::JoinHandle<()>,
    events: UnboundedReceiver<DriverEvent>,
    info: Info,
    path: PathBuf,
    held: Bitfield,
    started: Instant,
    peers_seen: BTreeSet<[u8; 20]>,
    /// Connections that failed to open.
    failed_connections: usize,
    last: Option<Stats>,
    progress: Progress,
}

impl Session {
    /// Starts the torrent on `running` (the driver its metadata came from,
    /// whose connections the download takes over), or on a new driver.
    async fn start(
        common: &Common,
        meta: &Metainfo,
        path: &Path,
        label: &str,
        running: Option<RunningDriver>,
    ) -> Result<Self, String> {
        let info = meta.info().clone();
        let origin: Option<Arc<dyn HttpOrigin>> = match web_seed(common, meta) {
            None => None,
            Some(url) => Some(Arc::new(
                HttpWebSeed::for_torrent(&url, &info, WEB_SEED_TIMEOUT)
                    .map_err(|e| e.to_string())?,
            )),
        };
        let store = DiskStore::open(path, &info)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let RunningDriver {
            handle,
            task: driver,
        } = match running {
            Some(running) => running,
            None => start_driver(common, meta).await?,
        };
        let events = handle.events();
        let store: Arc<dyn PieceStore> = Arc::new(store);
        let spec = TorrentSpec {
            info: info.clone(),
            store,
            origin,
            config: Default::default(),
        };
        let held = handle
            .add_torrent(spec)
            .await
            .map_err(|e| format!("cannot start the torrent: {e}"))?;
        if common.upload_limit.is_some() {
            let _ = handle.set_upload_limit(info.info_hash(), common.upload_limit);
        }
        let progress = Progress::new(info.total_length(), label, common.json);
        Ok(Self {
            handle,
            driver,
            events,
            info,
            path: path.to_owned(),
            held,
            started: Instant::now(),
            peers_seen: BTreeSet::new(),
            failed_connections: 0,
            last: None,
            progress,
        })
    }

    /// Follows events and refreshes the bar until the goal, the deadline
    /// or an interrupt.
    async fn watch(&mut self, goal: Watch) -> Outcome {
        let (fetching, deadline) = match goal {
            Watch::Fetch { deadline } => (true, deadline),
            Watch::Seed { deadline } => (false, deadline),
        };
        let until = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until);
        let interrupted = interrupted();
        tokio::pin!(interrupted);
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                () = &mut interrupted => return Outcome::Interrupted,
                () = &mut until => return if fetching { Outcome::Incomplete } else { Outcome::Complete },
                _ = tick.tick() => self.refresh().await,
                event = self.events.next() => match event.map(|e| e.event) {
                    None => return Outcome::Incomplete,
                    Some(Event::Completed) if fetching => {
                        self.refresh().await;
                        return Outcome::Complete;
                    }
                    Some(Event::PeerConnected { peer_id, .. }) => {
                        self.peers_seen.insert(peer_id);
                    }
                    Some(Event::ConnectFailed { peer_id, error, retry_in }) => {
                        self.failed_connections += 1;
                        tracing::info!(
                            peer = %String::from_utf8_lossy(&peer_id),
                            %error,
                            ?retry_in,
                            "connection failed"
                        );
                    }
                    Some(Event::StoreFailed { piece, error }) => {
                        // Nothing here can free space: stop with what is stored.
                        tracing::error!(
                            piece = piece.map(|p| p.get()),
                            %error,
                            "the disk refused a verified piece; stopping (what is stored is kept: free space and run again)"
                        );
                        return Outcome::Incomplete;
                    }
                    Some(Event::PeerBanned { peer_id, reason, .. }) => {
                        tracing::warn!(peer = %String::from_utf8_lossy(&peer_id), ?reason, "peer banned");
                    }
                    Some(_) => {}
                },
            }
        }
    }

    async fn refresh(&mut self) {
        if let Ok(Some(stats)) = self.handle.stats(self.info.info_hash()).await {
            self.progress.update(&stats);
            self.last = Some(stats);
        }
    }

    /// Stops the driver (announcing `stopped`, finishing writes).
    async fn stop(&mut self) {
        self.handle.shutdown();
        if let Err(e) = (&mut self.driver).await {
            tracing::warn!(error = %e, "driver task failed");
        }
    }

    /// Stops, then re-checks the file on disk against every piece hash.
    async fn finish(mut self, command: &'static str) -> Summary {
        self.refresh().await;
        self.progress.finish();
        let elapsed = self.started.elapsed();
        self.stop().await;
        let complete = match DiskStore::open(&self.path, &self.info) {
            Ok(store) => store.verified(&self.info).await.is_ok_and(|b| b.is_full()),
            Err(_) => false,
        };
        let layout = self.info.layout();
        let resumed = self
            .held
            .iter_ones()
            .map(|p| u64::from(layout.piece_len(p)))
            .sum();
        let stats = self.last.unwrap_or_default();
        Summary {
            command,
            info_hash: self.info.info_hash().to_hex(),
            name: self.info.name().to_owned(),
            path: self.path,
            total_bytes: self.info.total_length(),
            complete,
            bytes_p2p: stats.p2p_bytes,
            bytes_http: stats.http_bytes,
            bytes_http_received: stats.http_bytes_received,
            bytes_resumed: resumed,
            bytes_uploaded: stats.uploaded_bytes,
            elapsed_s: elapsed.as_secs_f64(),
            peers: self.peers_seen.len(),
            failed_connections: self.failed_connections,
            banned: stats.banned,
            hash_failures: stats.hash_failures,
        }
    }
}

pub(crate) fn webrtc_config(common: &Common) -> WebRtcConfig {
    let mut config = if common.loopback {
        WebRtcConfig::loopback()
    } else {
        WebRtcConfig::default()
    };
    config.ice_servers = common
        .ice_servers
        .iter()
        .map(|url| {
            let turn = url.starts_with("turn:") || url.starts_with("turns:");
            let secret =
                |value: &Option<String>| value.clone().filter(|_| turn).unwrap_or_default();
            IceServer {
                urls: vec![url.clone()],
                username: secret(&common.turn_username),
                credential: secret(&common.turn_credential),
            }
        })
        .collect();
    config.ice_from_tracker = common.ice_servers.is_empty() && !common.no_tracker_ice;
    config.relay_only = common.relay_only;
    config
}

/// Ctrl-C, or SIGTERM on Unix.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
