//! The driver on fake I/O: a thread timer, an in-memory web seed.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::channel::oneshot;
use futures::executor::block_on;

use super::signal::{SignalIn, SignalOut};
use super::*;
use crate::metainfo::{Info, TorrentBuilder};
use crate::swarm::{Event, SwarmConfig};

#[derive(Debug)]
struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let (done, wait) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            let _ = done.send(());
        });
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}

#[derive(Debug)]
struct FakeOrigin {
    content: Bytes,
    served: AtomicU64,
}

#[async_trait]
impl HttpOrigin for FakeOrigin {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, HttpError> {
        let (start, end) = (range.start as usize, range.end as usize);
        if end > self.content.len() || start > end {
            return Err(HttpError::Status(416));
        }
        self.served
            .fetch_add(range.end - range.start, Ordering::Relaxed);
        Ok(self.content.slice(start..end))
    }
}

fn torrent(len: usize) -> (Info, Bytes) {
    let content: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
    let meta = TorrentBuilder::new()
        .piece_length(64 << 10)
        .build_from_reader("film.bin", content.as_slice())
        .unwrap();
    (meta.info().clone(), Bytes::from(content))
}

/// A driver without tracker or connector, running on its own thread.
fn start_web_seed_only() -> (Handle, std::thread::JoinHandle<()>) {
    let io = DriverIo {
        signaling: None,
        connector: None,
        sleeper: Arc::new(ThreadSleeper),
    };
    let (handle, run) = driver(DriverConfig::default(), io);
    (handle, std::thread::spawn(move || block_on(run)))
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

fn quick_http() -> SwarmConfig {
    let mut config = SwarmConfig::default();
    config.http.patience = Duration::ZERO;
    config.http.max_in_flight = 4;
    config
}

#[test]
fn a_torrent_completes_from_the_web_seed_alone() {
    let (info, content) = torrent(300_000);
    let origin = Arc::new(FakeOrigin {
        content: content.clone(),
        served: AtomicU64::new(0),
    });
    let store = Arc::new(MemoryStore::new());
    let (handle, runner) = start_web_seed_only();
    let mut events = handle.events();
    let held = block_on(handle.add_torrent(TorrentSpec {
        info: info.clone(),
        store: store.clone(),
        origin: Some(origin.clone()),
        config: quick_http(),
    }))
    .unwrap();
    assert!(held.is_clear());
    block_on(async {
        let wait = async {
            while let Some(event) = events.next().await {
                if event.event == Event::Completed {
                    return true;
                }
            }
            false
        };
        let timeout = ThreadSleeper.sleep(Duration::from_secs(20));
        futures::pin_mut!(wait);
        matches!(
            futures::future::select(wait, timeout).await,
            futures::future::Either::Left((true, _))
        )
    })
    .then_some(())
    .expect("completed within 20 s");
    let stats = block_on(handle.stats(info.info_hash())).unwrap().unwrap();
    assert_eq!(stats.http_bytes, 300_000);
    assert!(origin.served.load(Ordering::Relaxed) <= 300_000 + (64 << 10));
    handle.shutdown();
    runner.join().unwrap();
    assert_eq!(store.content(&info).unwrap(), content.to_vec());
}

/// A memory store whose writes take a while, as a disk's may.
#[derive(Debug)]
struct SlowStore(MemoryStore);

#[async_trait]
impl PieceStore for SlowStore {
    async fn verified(&self, info: &Info) -> Result<crate::piece_map::Bitfield, StoreError> {
        self.0.verified(info).await
    }

    async fn read(&self, piece: crate::layout::PieceIndex) -> Result<Bytes, StoreError> {
        self.0.read(piece).await
    }

    async fn write(&self, piece: crate::layout::PieceIndex, data: Bytes) -> Result<(), StoreError> {
        ThreadSleeper.sleep(Duration::from_millis(30)).await;
        self.0.write(piece, data).await
    }
}

#[test]
fn completed_is_heard_only_once_every_piece_reads_back() {
    for round in 0..5 {
        let (info, content) = torrent(500_000 + round * 7_777);
        let origin = Arc::new(FakeOrigin {
            content: content.clone(),
            served: AtomicU64::new(0),
        });
        let store = Arc::new(SlowStore(MemoryStore::new()));
        let (handle, runner) = start_web_seed_only();
        let mut events = handle.events();
        block_on(handle.add_torrent(TorrentSpec {
            info: info.clone(),
            store: store.clone(),
            origin: Some(origin),
            config: quick_http(),
        }))
        .unwrap();
        block_on(async {
            while let Some(event) = events.next().await {
                if event.event == Event::Completed {
                    break;
                }
            }
        });
        // Read at once, as a program that heard `Completed` would.
        assert_eq!(
            store.0.content(&info).unwrap(),
            content.to_vec(),
            "round {round}"
        );
        handle.shutdown();
        runner.join().unwrap();
    }
}

/// A memory store that refuses writes while `full` is set, as a full disk does.
#[derive(Debug)]
struct FullDisk {
    inner: MemoryStore,
    full: AtomicBool,
    refused: AtomicU64,
}

#[async_trait]
impl PieceStore for FullDisk {
    async fn verified(&self, info: &Info) -> Result<crate::piece_map::Bitfield, StoreError> {
        self.inner.verified(info).await
    }

    async fn read(&self, piece: crate::layout::PieceIndex) -> Result<Bytes, StoreError> {
        self.inner.read(piece).await
    }

    async fn write(&self, piece: crate::layout::PieceIndex, data: Bytes) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::io(std::io::ErrorKind::StorageFull.into()));
        }
        self.inner.write(piece, data).await
    }
}

/// The next event `wanted` accepts, within 20 s.
fn next_event(
    events: &mut futures::channel::mpsc::UnboundedReceiver<DriverEvent>,
    mut wanted: impl FnMut(&Event) -> bool,
) -> Event {
    block_on(async {
        let wait = async {
            while let Some(event) = events.next().await {
                if wanted(&event.event) {
                    return Some(event.event);
                }
            }
            None
        };
        let timeout = ThreadSleeper.sleep(Duration::from_secs(20));
        futures::pin_mut!(wait);
        match futures::future::select(wait, timeout).await {
            futures::future::Either::Left((event, _)) => event,
            futures::future::Either::Right(_) => None,
        }
    })
    .expect("the event within 20 s")
}

#[test]
fn a_refused_write_pauses_the_torrent_and_resuming_writes_it_again() {
    const LEN: usize = 2_000_000;
    let (info, content) = torrent(LEN);
    let origin = Arc::new(FakeOrigin {
        content: content.clone(),
        served: AtomicU64::new(0),
    });
    let store = Arc::new(FullDisk {
        inner: MemoryStore::new(),
        full: AtomicBool::new(true),
        refused: AtomicU64::new(0),
    });
    let (handle, runner) = start_web_seed_only();
    let mut events = handle.events();
    block_on(handle.add_torrent(TorrentSpec {
        info: info.clone(),
        store: store.clone(),
        origin: Some(origin.clone()),
        config: quick_http(),
    }))
    .unwrap();
    let failed = next_event(&mut events, |e| matches!(e, Event::StoreFailed { .. }));
    let Event::StoreFailed { error, piece } = failed else {
        unreachable!()
    };
    assert_eq!(
        error.kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{error}"
    );
    assert!(piece.is_some());
    // Paused: the origin is asked for nothing more once what was under way lands.
    std::thread::sleep(Duration::from_millis(300));
    let served = origin.served.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        origin.served.load(Ordering::SeqCst),
        served,
        "fetching while paused"
    );
    assert!(
        served < LEN as u64,
        "the whole file came while the disk was full"
    );
    // Room again: resuming writes what was refused, then fetches the rest.
    store.full.store(false, Ordering::SeqCst);
    handle.pause(info.info_hash(), false).unwrap();
    next_event(&mut events, |e| *e == Event::Completed);
    assert!(store.refused.load(Ordering::SeqCst) >= 1);
    assert_eq!(store.inner.content(&info).unwrap(), content.to_vec());
    // Nothing verified was fetched twice.
    assert!(origin.served.load(Ordering::SeqCst) <= LEN as u64 + (64 << 10));
    handle.shutdown();
    runner.join().unwrap();
}

#[test]
fn every_default_config_has_its_own_peer_id() {
    let ids: std::collections::BTreeSet<_> =
        (0..100).map(|_| DriverConfig::default().peer_id).collect();
    assert_eq!(ids.len(), 100);
    assert_eq!(DriverConfig::seeded(7), DriverConfig::seeded(7));
}

#[test]
fn a_torrent_complete_when_added_reports_completed() {
    let (info, content) = torrent(100_000);
    let (handle, runner) = start_web_seed_only();
    let mut events = handle.events();
    block_on(handle.add_torrent(seeding(&info, &content))).unwrap();
    let first = block_on(events.next()).unwrap();
    assert_eq!(first.info_hash, info.info_hash());
    assert_eq!(first.event, Event::Completed);
    handle.shutdown();
    runner.join().unwrap();
}

#[test]
fn adding_twice_is_refused_and_dropping_handles_stops_the_driver() {
    let (info, content) = torrent(100_000);
    let (handle, runner) = start_web_seed_only();
    let spec = || seeding(&info, &content);
    let held = block_on(handle.add_torrent(spec())).unwrap();
    assert!(held.is_full());
    assert!(matches!(
        block_on(handle.add_torrent(spec())),
        Err(AddTorrentError::Duplicate)
    ));
    drop(handle);
    runner.join().unwrap();
}

#[test]
fn a_removed_torrent_is_forgotten_and_can_be_added_again() {
    let (info, content) = torrent(200_000);
    let (handle, runner) = start_web_seed_only();
    let spec = || seeding(&info, &content);
    block_on(handle.add_torrent(spec())).unwrap();
    assert!(block_on(handle.stats(info.info_hash())).unwrap().is_some());
    assert!(block_on(handle.remove_torrent(info.info_hash())).unwrap());
    assert!(block_on(handle.stats(info.info_hash())).unwrap().is_none());
    assert!(!block_on(handle.remove_torrent(info.info_hash())).unwrap());
    let held = block_on(handle.add_torrent(spec())).unwrap();
    assert!(held.is_full());
    handle.shutdown();
    runner.join().unwrap();
}

/// Records what the driver sends to the tracker.
#[derive(Debug, Default)]
struct RecordingSignaling {
    sent: std::sync::Mutex<Vec<SignalOut>>,
}

impl Signaling for RecordingSignaling {
    fn send(&self, message: SignalOut) -> Result<(), SignalingError> {
        self.sent.lock().unwrap().push(message);
        Ok(())
    }
}

impl RecordingSignaling {
    fn sent(&self) -> Vec<SignalOut> {
        self.sent.lock().unwrap().clone()
    }
}

/// A connector whose offers are not made until the test releases them (then
/// they fail, so the announce goes out without offers).
#[derive(Debug)]
struct HeldConnector {
    release: futures::future::Shared<oneshot::Receiver<()>>,
}

#[async_trait]
impl PeerConnector for HeldConnector {
    async fn create_offer(&self) -> Result<Offered, ConnectError> {
        let _ = self.release.clone().await;
        Err(ConnectError::Failed("no peers in this test".into()))
    }

    async fn accept_offer(&self, _offer_sdp: &str) -> Result<Offered, ConnectError> {
        Err(ConnectError::Failed("no peers in this test".into()))
    }
}

/// A driver with a recording tracker link and `connector`, fetching `info`
/// from its web seed.
fn start_recorded(
    connector: Option<Arc<dyn PeerConnector>>,
) -> (Handle, Arc<RecordingSignaling>, std::thread::JoinHandle<()>) {
    let signaling = Arc::new(RecordingSignaling::default());
    let io = DriverIo {
        signaling: Some(SignalingLink {
            sender: signaling.clone(),
            events: Box::pin(futures::stream::pending()),
        }),
        connector,
        sleeper: Arc::new(ThreadSleeper),
    };
    let (handle, run) = driver(DriverConfig::default(), io);
    (handle, signaling, std::thread::spawn(move || block_on(run)))
}

fn from_web_seed(info: &Info, content: &Bytes) -> TorrentSpec {
    TorrentSpec {
        info: info.clone(),
        store: Arc::new(MemoryStore::new()),
        origin: Some(Arc::new(FakeOrigin {
            content: content.clone(),
            served: AtomicU64::new(0),
        })),
        config: quick_http(),
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "no {what} in 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_have(message: &SignalOut) -> bool {
    matches!(message, SignalOut::Have { .. })
}

#[test]
fn pieces_are_reported_only_after_the_first_announce() {
    let (info, content) = torrent(300_000);
    let (release, released) = oneshot::channel::<()>();
    let connector = HeldConnector {
        release: futures::FutureExt::shared(released),
    };
    let (handle, signaling, runner) = start_recorded(Some(Arc::new(connector)));
    let mut events = handle.events();
    block_on(handle.add_torrent(from_web_seed(&info, &content))).unwrap();
    // The whole file arrives from the web seed while the first announce
    // still waits for its offers.
    block_on(async {
        while let Some(event) = events.next().await {
            if event.event == Event::Completed {
                break;
            }
        }
    });
    assert!(signaling.sent().is_empty(), "{:?}", signaling.sent());
    // The offers fail; the announce goes out, and carries every piece.
    let _ = release.send(());
    wait_for("announce", || !signaling.sent().is_empty());
    handle.shutdown();
    runner.join().unwrap();
    let sent = signaling.sent();
    assert!(!sent.iter().any(is_have), "{sent:?}");
    let SignalOut::Announce(first) = &sent[0] else {
        panic!("first message {:?}", sent[0]);
    };
    assert!(first.bitfield.as_ref().unwrap().is_full());
    assert_eq!(first.left, 0);
}

#[test]
fn pieces_gained_after_the_announce_are_reported() {
    let (info, content) = torrent(300_000);
    let (handle, signaling, runner) = start_recorded(None);
    block_on(handle.add_torrent(from_web_seed(&info, &content))).unwrap();
    wait_for("x_cs_have", || signaling.sent().iter().any(is_have));
    handle.shutdown();
    runner.join().unwrap();
    let sent = signaling.sent();
    assert!(matches!(sent[0], SignalOut::Announce(_)), "{sent:?}");
}

/// Offers that are made, but whose connections never open (as when ICE
/// fails); remembers the ICE servers it is given.
#[derive(Debug, Default)]
struct FailingConnector {
    granted: std::sync::Mutex<Vec<IceGrant>>,
}

struct NeverOpens;

#[async_trait]
impl PendingConnection for NeverOpens {
    async fn open(
        self: Box<Self>,
        _answer_sdp: Option<String>,
    ) -> Result<PeerChannel, ConnectError> {
        Err(ConnectError::Failed("ICE failed".into()))
    }
}

#[async_trait]
impl PeerConnector for FailingConnector {
    async fn create_offer(&self) -> Result<Offered, ConnectError> {
        Ok(Offered {
            sdp: "v=0 offer".into(),
            pending: Box::new(NeverOpens),
        })
    }

    async fn accept_offer(&self, _offer_sdp: &str) -> Result<Offered, ConnectError> {
        Err(ConnectError::Failed("not in this test".into()))
    }

    fn set_ice_servers(&self, grant: &IceGrant) {
        self.granted.lock().unwrap().push(grant.clone());
    }
}

#[test]
fn ice_servers_reach_the_connector_and_a_failed_connection_is_retried() {
    let (info, content) = torrent(100_000);
    let info_hash = info.info_hash();
    let connector = Arc::new(FailingConnector::default());
    let signaling = Arc::new(RecordingSignaling::default());
    let (tracker, from_tracker) = futures::channel::mpsc::unbounded();
    let io = DriverIo {
        signaling: Some(SignalingLink {
            sender: signaling.clone(),
            events: Box::pin(from_tracker),
        }),
        connector: Some(connector.clone()),
        sleeper: Arc::new(ThreadSleeper),
    };
    let (handle, run) = driver(DriverConfig::default(), io);
    let runner = std::thread::spawn(move || block_on(run));
    let mut events = handle.events();
    // A seeder: it announces every 120 s unless something brings it forward.
    block_on(handle.add_torrent(seeding(&info, &content))).unwrap();
    let announces = || {
        signaling
            .sent()
            .into_iter()
            .filter_map(|m| match m {
                SignalOut::Announce(a) => Some(a),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    wait_for("the first announce", || !announces().is_empty());
    let grant = IceGrant {
        servers: vec![IceServer {
            urls: vec!["turn:127.0.0.1:3478".into()],
            username: "1:peer".into(),
            credential: "c2VjcmV0".into(),
        }],
        expires: Some(u64::MAX / 2),
    };
    tracker
        .unbounded_send(SignalIn::Announced {
            info_hash,
            interval: Some(Duration::from_secs(120)),
            complete: Some(1),
            incomplete: Some(0),
            ice: Some(grant.clone()),
            facts: None,
        })
        .unwrap();
    wait_for("the grant", || {
        !connector.granted.lock().unwrap().is_empty()
    });
    assert_eq!(connector.granted.lock().unwrap()[0], grant);
    // The first grant brings an announce with offers made with it.
    wait_for("an announce with offers", || {
        announces().iter().any(|a| !a.offers.is_empty())
    });
    let offered = announces()
        .into_iter()
        .find(|a| !a.offers.is_empty())
        .unwrap();
    let remote = *b"-XX0001-remotepeer01";
    tracker
        .unbounded_send(SignalIn::Answer {
            info_hash,
            from: remote,
            offer_id: offered.offers[0].0,
            sdp: "v=0 answer".into(),
        })
        .unwrap();
    let (reason, retry_in) = block_on(async {
        while let Some(event) = events.next().await {
            if let Event::ConnectFailed {
                peer_id,
                error,
                retry_in,
            } = event.event
            {
                assert_eq!(peer_id, remote);
                return (error, retry_in);
            }
        }
        panic!("no ConnectFailed event");
    });
    assert_eq!(reason, ConnectError::Failed("ICE failed".into()));
    assert_eq!(retry_in, Duration::from_secs(5));
    // It announces again after the backoff, not after the 120 s interval.
    let before = announces().len();
    let failed_at = std::time::Instant::now();
    wait_for("the retry announce", || announces().len() > before);
    let waited = failed_at.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(8)).contains(&waited),
        "announced again after {waited:?}"
    );
    handle.shutdown();
    runner.join().unwrap();
}
