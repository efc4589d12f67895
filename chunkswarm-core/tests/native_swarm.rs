//! Native peers over real WebRTC on loopback, introduced by the real tracker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]
#![cfg(feature = "native")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chunkswarm_core::driver::{
    DriverConfig, DriverIo, Handle, MemoryStore, PieceStore, TorrentSpec, driver,
};
use chunkswarm_core::metainfo::{Info, TorrentBuilder};
use chunkswarm_core::native::{
    DiskStore, HttpWebSeed, TokioSleeper, WebRtcConfig, WebRtcConnector, connect_tracker,
    tracker_link,
};
use chunkswarm_core::swarm::{Event, SwarmConfig};
use chunkswarm_tracker::{Config, Tracker, serve};
use futures::StreamExt as _;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(60);

struct TestTracker {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start_tracker(config: Config) -> TestTracker {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let tracker = Tracker::new(config).unwrap();
    tokio::spawn(serve(listener, tracker, async move {
        let _ = stopped.await;
    }));
    TestTracker { addr, _stop: stop }
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 131) ^ (i >> 9)) as u8).collect()
}

fn torrent(data: &[u8], piece_length: u32) -> Info {
    TorrentBuilder::new()
        .piece_length(piece_length)
        .build_from_reader("film.bin", data)
        .unwrap()
        .info()
        .clone()
}

async fn peer(tracker: Option<&TestTracker>, id: u8) -> Handle {
    let signaling = match tracker {
        Some(t) => Some(
            connect_tracker(&format!("ws://{}/announce", t.addr))
                .await
                .unwrap(),
        ),
        None => None,
    };
    let io = DriverIo {
        signaling,
        connector: Some(Arc::new(WebRtcConnector::new(WebRtcConfig::loopback()))),
        sleeper: Arc::new(TokioSleeper),
    };
    let mut peer_id = *b"-CS0001-test00000000";
    peer_id[19] = id;
    let config = DriverConfig {
        peer_id,
        rng_seed: u64::from(id),
        ..DriverConfig::default()
    };
    let (handle, run) = driver(config, io);
    tokio::spawn(run);
    handle
}

fn swarm_config(http_patience: Duration) -> SwarmConfig {
    let mut config = SwarmConfig::default();
    config.http.patience = http_patience;
    config
}

/// A torrent whose store already holds every piece, without a web seed.
fn seeding(info: &Info, content: &Bytes) -> TorrentSpec {
    TorrentSpec {
        info: info.clone(),
        store: Arc::new(MemoryStore::with_content(info, content)),
        origin: None,
        config: SwarmConfig::default(),
    }
}

/// A new peer that fetches `info` without a web seed; returns once it has
/// every piece.
async fn fetch_from_peers(
    tracker: &TestTracker,
    id: u8,
    info: &Info,
) -> (Handle, Arc<MemoryStore>) {
    let fetcher = peer(Some(tracker), id).await;
    let mut events = fetcher.events();
    let store = Arc::new(MemoryStore::new());
    fetcher
        .add_torrent(TorrentSpec {
            info: info.clone(),
            store: store.clone(),
            origin: None,
            config: swarm_config(Duration::from_secs(2)),
        })
        .await
        .unwrap();
    completed(&mut events).await;
    (fetcher, store)
}

/// Waits for `Completed` on the handle's events (subscribed before adding).
async fn completed(
    events: &mut futures::channel::mpsc::UnboundedReceiver<chunkswarm_core::driver::DriverEvent>,
) {
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if event.event == Event::Completed {
                return;
            }
        }
        panic!("driver stopped before completing");
    })
    .await
    .expect("download completed in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_peers_exchange_a_file_over_webrtc_via_the_tracker() {
    let tracker = start_tracker(Config::default()).await;
    let data = content(3 << 20);
    let info = torrent(&data, 256 << 10);
    let bytes = Bytes::from(data.clone());

    let seeder = peer(Some(&tracker), 1).await;
    let held = seeder.add_torrent(seeding(&info, &bytes)).await.unwrap();
    assert!(held.is_full());
    // Let the seeder's announce land before the fetcher's offers go out.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (fetcher, store) = fetch_from_peers(&tracker, 2, &info).await;

    let stats = fetcher.stats(info.info_hash()).await.unwrap().unwrap();
    assert_eq!(stats.p2p_bytes, 3 << 20);
    assert_eq!(stats.http_bytes, 0);
    // The last piece may still be in the write queue for a moment.
    tokio::time::timeout(WAIT, async {
        while store.content(&info).is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert!(store.content(&info).unwrap() == data, "content differs");
    let seeded = seeder.stats(info.info_hash()).await.unwrap().unwrap();
    assert!(seeded.uploaded_bytes >= 3 << 20);
    fetcher.shutdown();
    seeder.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_with_no_peers_completes_from_the_tracker_origin_and_resumes_from_disk() {
    let media = tempfile::tempdir().unwrap();
    let data = content((1 << 20) + 12_345);
    std::fs::write(media.path().join("film.bin"), &data).unwrap();
    let tracker = start_tracker(Config {
        media_dir: Some(media.path().to_owned()),
        ..Config::default()
    })
    .await;
    let info = torrent(&data, 64 << 10);
    let url = format!("http://{}/media/film.bin", tracker.addr);
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("film.bin");

    let fetcher = peer(Some(&tracker), 3).await;
    let mut events = fetcher.events();
    let store = Arc::new(DiskStore::open(&path, &info).unwrap());
    fetcher
        .add_torrent(TorrentSpec {
            info: info.clone(),
            store: store.clone(),
            origin: Some(Arc::new(HttpWebSeed::new(&url, WAIT).unwrap())),
            config: swarm_config(Duration::ZERO),
        })
        .await
        .unwrap();
    completed(&mut events).await;
    let stats = fetcher.stats(info.info_hash()).await.unwrap().unwrap();
    assert_eq!(stats.http_bytes, data.len() as u64);
    fetcher.shutdown();

    // Every piece is on disk once the writes finish; a new store sees them all.
    tokio::time::timeout(WAIT, async {
        loop {
            let again = DiskStore::open(&path, &info).unwrap();
            if again.verified(&info).await.unwrap().is_full() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert!(std::fs::read(&path).unwrap() == data, "content differs");

    // A restarted fetch resumes: everything is held, nothing is fetched.
    let again = peer(None, 4).await;
    let held = again
        .add_torrent(TorrentSpec {
            info: info.clone(),
            store: Arc::new(DiskStore::open(&path, &info).unwrap()),
            origin: Some(Arc::new(HttpWebSeed::new(&url, WAIT).unwrap())),
            config: SwarmConfig::default(),
        })
        .await
        .unwrap();
    assert!(held.is_full());
    again.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_announces_again_when_its_tracker_comes_back() {
    let tracker = start_tracker(Config::default()).await;
    let addr = tracker.addr;
    let url = format!("ws://{addr}/announce");
    let data = content(1 << 20);
    let info = torrent(&data, 128 << 10);
    let bytes = Bytes::from(data.clone());

    let io = DriverIo {
        signaling: Some(tracker_link(&url)),
        connector: Some(Arc::new(WebRtcConnector::new(WebRtcConfig::loopback()))),
        sleeper: Arc::new(TokioSleeper),
    };
    let (seeder, run) = driver(DriverConfig::seeded(11), io);
    tokio::spawn(run);
    seeder.add_torrent(seeding(&info, &bytes)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The tracker goes away (forgetting every swarm) and comes back on the
    // same address; only a re-announce can tell it about the seeder again.
    drop(tracker);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = tokio::time::timeout(WAIT, async {
        loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => return listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        Tracker::new(Config::default()).unwrap(),
        async move {
            let _ = stopped.await;
        },
    ));
    let restarted = TestTracker {
        addr,
        _stop: oneshot::channel().0,
    };

    let (fetcher, _) = fetch_from_peers(&restarted, 12, &info).await;
    let stats = fetcher.stats(info.info_hash()).await.unwrap().unwrap();
    assert_eq!(stats.p2p_bytes, data.len() as u64);
    fetcher.shutdown();
    seeder.shutdown();
}
