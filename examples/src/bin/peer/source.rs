//! Where the torrent, the tracker and the web seed come from.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chunkswarm_core::driver::{DriverConfig, DriverIo, Handle, driver};
use chunkswarm_core::magnet::Magnet;
use chunkswarm_core::metainfo::Metainfo;
use chunkswarm_core::native::{
    TokioSleeper, WebRtcConnector, connect_tracker, entropy_seed, http_get,
};

use crate::cli::Common;
use crate::run::webrtc_config;

/// Torrent files larger than this are refused (a 1 TiB file in 1 MiB pieces
/// has a 20 MiB piece list).
const MAX_TORRENT_BYTES: usize = 64 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a torrent from a path, an `http(s)://` URL, or a magnet link whose
/// `xs` names where the `.torrent` is (the link's trackers and web seeds are
/// added to the torrent's own).
pub(crate) async fn load_torrent(location: &str) -> Result<Metainfo, String> {
    if is_magnet(location) {
        return load_magnet(location).await;
    }
    load_file_or_url(location).await
}

fn is_magnet(location: &str) -> bool {
    location
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
}

/// The magnet link `location` is, when its metadata must come from peers:
/// it names no http(s) `xs`.
pub(crate) fn magnet_without_torrent_url(location: &str) -> Result<Option<Magnet>, String> {
    if !is_magnet(location) {
        return Ok(None);
    }
    let magnet = Magnet::parse(location).map_err(|e| format!("bad magnet link: {e}"))?;
    Ok((!magnet.sources().iter().any(|u| is_http(u))).then_some(magnet))
}

/// A driver running on its task, with the tracker connection it was made
/// with.
pub(crate) struct RunningDriver {
    pub(crate) handle: Handle,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// Gets a magnet link's metadata from the peers its tracker (or
/// `--tracker`) introduces, over BEP 9 `ut_metadata`, verified against the
/// infohash; the link's trackers and web seeds join the torrent. Returns
/// the driver it ran on too: the torrent waits there with its connections
/// for the download to start on them. On failure the driver is shut down.
pub(crate) async fn metadata_from_peers(
    magnet: &Magnet,
    common: &Common,
    timeout: Duration,
) -> Result<(Metainfo, RunningDriver), String> {
    let url = if common.no_tracker {
        None
    } else {
        match &common.tracker {
            Some(url) => Some(url.clone()),
            None => magnet.trackers().iter().find(|u| is_websocket(u)).cloned(),
        }
    };
    let Some(url) = url else {
        return Err(
            "the magnet link has no http(s) `xs` (the URL of its .torrent) and no \
                    ws(s):// tracker to fetch its metadata from peers; give --tracker"
                .to_owned(),
        );
    };
    let signaling = connect_tracker(&url)
        .await
        .map_err(|e| format!("cannot fetch the metadata from peers: {e}"))?;
    let io = DriverIo {
        signaling: Some(signaling),
        connector: Some(Arc::new(WebRtcConnector::new(webrtc_config(common)))),
        sleeper: Arc::new(TokioSleeper),
    };
    let (handle, future) = driver(DriverConfig::seeded(entropy_seed()), io);
    let task = tokio::spawn(future);
    let info_hash = magnet.info_hash();
    eprintln!("fetching the metadata of {info_hash} from peers");
    let fetched = tokio::time::timeout(timeout, handle.fetch_metadata(info_hash)).await;
    let running = RunningDriver { handle, task };
    let resolved = match fetched {
        Ok(Ok(info)) => magnet
            .resolve(Metainfo::from_info(info))
            .map_err(|e| format!("metadata from peers: {e}")),
        Ok(Err(e)) => Err(format!("metadata from peers: {e}")),
        Err(_) => Err(format!(
            "no peer gave the torrent's metadata within {} s",
            timeout.as_secs()
        )),
    };
    match resolved {
        Ok(meta) => Ok((meta, running)),
        Err(e) => {
            running.handle.shutdown();
            let _ = running.task.await;
            Err(e)
        }
    }
}

async fn load_file_or_url(location: &str) -> Result<Metainfo, String> {
    let bytes = if is_http(location) {
        http_get(location, MAX_TORRENT_BYTES, FETCH_TIMEOUT)
            .await
            .map_err(|e| format!("cannot fetch {location}: {e}"))?
            .to_vec()
    } else {
        let path = Path::new(location);
        let len = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {location}: {e}"))?
            .len();
        if len > MAX_TORRENT_BYTES as u64 {
            return Err(format!("{location} is {len} bytes: too big for a torrent"));
        }
        std::fs::read(path).map_err(|e| format!("cannot read {location}: {e}"))?
    };
    Metainfo::from_bytes(&bytes).map_err(|e| format!("{location} is not a valid torrent: {e}"))
}

/// The tracker to use: the flag, else the torrent's first WebSocket tracker.
pub(crate) fn tracker(common: &Common, meta: &Metainfo) -> Result<Option<String>, String> {
    if common.no_tracker {
        return Ok(None);
    }
    if let Some(url) = &common.tracker {
        return if is_websocket(url) {
            Ok(Some(url.clone()))
        } else {
            Err(format!("--tracker must be ws:// or wss://, not {url}"))
        };
    }
    Ok(meta
        .trackers()
        .into_iter()
        .find(|url| is_websocket(url))
        .map(str::to_owned))
}

/// The web seed to use: the flag, else the torrent's first http(s) one.
pub(crate) fn web_seed(common: &Common, meta: &Metainfo) -> Option<String> {
    if common.no_web_seed {
        return None;
    }
    if let Some(url) = &common.web_seed {
        return Some(url.clone());
    }
    meta.web_seeds()
        .iter()
        .find(|url| url.starts_with("http://") || url.starts_with("https://"))
        .cloned()
}

async fn load_magnet(link: &str) -> Result<Metainfo, String> {
    let magnet = Magnet::parse(link).map_err(|e| format!("bad magnet link: {e}"))?;
    let sources: Vec<&String> = magnet.sources().iter().filter(|u| is_http(u)).collect();
    if sources.is_empty() {
        return Err(
            "the magnet link has no http(s) `xs` (the URL of its .torrent); \
             fetching a torrent's metadata from peers is not supported yet"
                .to_owned(),
        );
    }
    let mut failures = Vec::new();
    for url in sources {
        let found = load_file_or_url(url)
            .await
            .and_then(|meta| magnet.resolve(meta).map_err(|e| format!("{url}: {e}")));
        match found {
            Ok(meta) => return Ok(meta),
            Err(e) => failures.push(e),
        }
    }
    Err(format!(
        "no source of the magnet link gave its torrent: {}",
        failures.join("; ")
    ))
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn is_websocket(url: &str) -> bool {
    url.starts_with("ws://") || url.starts_with("wss://")
}
