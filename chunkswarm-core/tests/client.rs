//! The high-level client against a real tracker and origin on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]
#![cfg(feature = "native")]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chunkswarm_core::client::{
    AddError, AddOptions, Client, ClientConfig, LoadError, Torrent, TorrentError, TrackerState,
};
use chunkswarm_core::driver::{HttpError, TrackerError};
use chunkswarm_core::magnet::MagnetError;
use chunkswarm_core::metainfo::{InfoHash, Metainfo, TorrentBuilder};
use chunkswarm_core::native::http_get;
use chunkswarm_core::swarm::Event;
use chunkswarm_tracker::{Config, RunningTracker, Tracker};
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const WAIT: Duration = Duration::from_secs(60);

fn content(len: usize, salt: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + salt) ^ (i >> 9)) as u8)
        .collect()
}

/// A tracker whose library holds `film.webm`, in 64 KiB pieces.
async fn tracker_with(dir: &Path, data: &[u8]) -> RunningTracker {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("film.webm"), data).unwrap();
    let config = Config {
        media_dir: Some(dir.to_owned()),
        piece_length: 64 << 10,
        ..Config::default()
    };
    Tracker::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

fn loopback_client(download_dir: &Path) -> Client {
    let mut config = ClientConfig::loopback();
    config.download_dir = download_dir.to_owned();
    config.swarm.http.patience = Duration::ZERO;
    config.swarm.http.max_in_flight = 4;
    Client::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_resolves_only_once_the_content_reads_back_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    // Rounds of fresh downloads from the web seed, each file read at once.
    for round in 0..6 {
        let data = content(1_500_000 + round * 7_001, round);
        let tracker = tracker_with(&dir.path().join(format!("media{round}")), &data).await;
        let out = dir.path().join(format!("out{round}"));
        let client = loopback_client(&out);
        let torrent = client.add(tracker.torrent_url("film.webm")).await.unwrap();
        assert!(!torrent.state().complete);
        tokio::time::timeout(WAIT, torrent.wait())
            .await
            .expect("complete in time")
            .unwrap();
        let read = std::fs::read(out.join("film.webm")).unwrap();
        assert!(read == data, "round {round}: the file read back differs");
        let state = torrent.state();
        assert!(state.complete);
        assert_eq!(state.stats.verified_bytes, data.len() as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_whose_content_is_whole_is_complete_when_added() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(400_000, 3);
    let tracker = tracker_with(&dir.path().join("media"), &data).await;
    let client = loopback_client(dir.path());
    let options = AddOptions {
        output: Some(dir.path().join("media/film.webm")),
        ..AddOptions::default()
    };
    let torrent = client
        .add_with(tracker.torrent_url("film.webm"), options)
        .await
        .unwrap();
    let state = torrent.state();
    assert!(state.complete, "{state:?}");
    assert_eq!(state.stats.pieces_verified, state.stats.pieces_total);
    tokio::time::timeout(Duration::from_secs(1), torrent.wait())
        .await
        .expect("at once")
        .unwrap();
}

/// A client seeding the tracker's `film.webm` from `dir/media`, and one
/// that downloads into `dir/out`; keep the seeder alive while it should seed.
async fn seeder_and_fetcher(tracker: &RunningTracker, dir: &Path) -> (Client, Torrent, Client) {
    let seeder = Client::new(ClientConfig::loopback());
    let seeding = seeder
        .add_with(
            tracker.torrent_url("film.webm").as_str(),
            AddOptions::at(dir.join("media/film.webm")),
        )
        .await
        .unwrap();
    assert!(seeding.state().complete);
    let fetcher = Client::new(ClientConfig {
        download_dir: dir.join("out"),
        ..ClientConfig::loopback()
    });
    (seeder, seeding, fetcher)
}

/// Options that leave out the torrent's web seeds.
fn no_web_seed() -> AddOptions {
    AddOptions {
        web_seeds: Some(Vec::new()),
        ..AddOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_with_defaults_exchange_a_file_over_webrtc() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(2_000_000, 9);
    let tracker = tracker_with(&dir.path().join("media"), &data).await;
    let torrent_url = tracker.torrent_url("film.webm");
    let (_seeder, _seeding, fetcher) = seeder_and_fetcher(&tracker, dir.path()).await;
    // No web seed: every byte must come from the seeder.
    let fetching = fetcher.add_with(torrent_url, no_web_seed()).await.unwrap();
    tokio::time::timeout(WAIT, fetching.wait())
        .await
        .expect("complete in time")
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("out/film.webm")).unwrap(),
        data
    );
    let state = fetching.state();
    assert_eq!(state.tracker, TrackerState::Connected);
    assert_eq!(state.stats.http_bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_tracker_down_the_failure_arrives_within_the_documented_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(100_000, 1);
    // A port that refuses, and one that accepts TCP but never answers.
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("ws://{}/announce", refusing.local_addr().unwrap());
    drop(refusing);
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("ws://{}/announce", silent.local_addr().unwrap());
    let bound = Duration::from_secs(2);
    for (url, timed_out) in [(refused_url, false), (silent_url, true)] {
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .announce(url.as_str())
            .build_from_reader("film.webm", data.as_slice())
            .unwrap();
        let mut config = ClientConfig::loopback();
        config.tracker_timeout = bound;
        config.download_dir = dir.path().join(format!("out-{timed_out}"));
        let client = Client::new(config);
        let started = Instant::now();
        let torrent = client.add(meta.to_bytes()).await.unwrap();
        let mut events = torrent.events();
        let mut watch = torrent.watch();
        let failed = tokio::time::timeout(bound + Duration::from_secs(1), async {
            watch
                .wait_for(|s| matches!(s.tracker, TrackerState::Failed(_)))
                .await
                .unwrap()
                .tracker
                .clone()
        })
        .await
        .expect("the failure within the bound");
        assert!(started.elapsed() <= bound + Duration::from_secs(1));
        let TrackerState::Failed(error) = failed else {
            unreachable!()
        };
        match error {
            TrackerError::TimedOut { after, .. } => {
                assert!(timed_out);
                assert_eq!(after, bound);
            }
            TrackerError::Unreachable { .. } => assert!(!timed_out),
            other => panic!("{other:?}"),
        }
        // Also as an event, on the stream of a subscriber who came late
        // (the next attempt fails too).
        let failure = async {
            while let Some(event) = events.next().await {
                if let Event::TrackerFailed { error } = event {
                    return Some(error);
                }
            }
            None
        };
        let event = tokio::time::timeout(bound * 3, failure).await;
        assert!(matches!(event, Ok(Some(_))), "{event:?}");
        torrent.remove().await.unwrap();
        assert_eq!(torrent.wait().await, Err(TorrentError::Removed));
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let client = loopback_client(dir.path());
    let missing = client.add(dir.path().join("none.torrent")).await;
    assert!(
        matches!(missing, Err(chunkswarm_core::client::AddError::Load(_))),
        "{missing:?}"
    );
    // No tracker, no web seed, nothing on disk: nowhere to get it from.
    let meta = TorrentBuilder::new()
        .build_from_reader("x.bin", &b"hello"[..])
        .unwrap();
    let lonely = client.add(meta.to_bytes()).await;
    assert!(
        matches!(lonely, Err(chunkswarm_core::client::AddError::NoSource)),
        "{lonely:?}"
    );
    let bad_tracker = AddOptions {
        trackers: Some(vec!["http://tracker.example/announce".into()]),
        ..AddOptions::default()
    };
    let refused = client.add_with(meta.to_bytes(), bad_tracker).await;
    assert!(
        matches!(
            refused,
            Err(chunkswarm_core::client::AddError::BadTracker(_))
        ),
        "{refused:?}"
    );
}

/// An origin on loopback that answers every request with `status` and no
/// body; returns its file URL and the count of requests it answered.
async fn failing_origin(status: u16) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/film.webm", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    pending.extend_from_slice(&buf[..n]);
                    // One answer per request head (the client keeps the
                    // connection alive).
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        count.fetch_add(1, Ordering::SeqCst);
                        let answer = format!("HTTP/1.1 {status} Nope\r\ncontent-length: 0\r\n\r\n");
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_origin_gone_and_no_peer_wait_reports_no_source_left() {
    let dir = tempfile::tempdir().unwrap();
    for status in [404, 410] {
        let (url, answered) = failing_origin(status).await;
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .web_seed(url)
            .build_from_reader("film.webm", content(100_000, 2).as_slice())
            .unwrap();
        let mut config = ClientConfig::loopback();
        config.download_dir = dir.path().join(format!("out-{status}"));
        config.swarm.http.patience = Duration::ZERO;
        config.swarm.no_source_timeout = Duration::from_secs(1);
        let client = Client::new(config);
        let torrent = client.add(meta.to_bytes()).await.unwrap();
        let mut events = torrent.events();
        let outcome = tokio::time::timeout(Duration::from_secs(30), torrent.wait())
            .await
            .expect("reported, not waited for forever");
        let gone = Some(HttpError::Status(status));
        assert_eq!(
            outcome,
            Err(TorrentError::NoSourceLeft {
                origin: gone.clone()
            })
        );
        let state = torrent.state();
        assert!(!state.complete);
        assert_eq!(
            state.error,
            Some(TorrentError::NoSourceLeft { origin: gone })
        );
        // Given up after `gone_after` refusals (two requests may have been
        // in flight at the last one), and asked no more.
        let asked = answered.load(Ordering::SeqCst);
        assert!((3..=4).contains(&asked), "{asked} requests");
        let mut heard_gone = false;
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(200), events.next()).await
        {
            heard_gone |= event
                == Event::OriginGone {
                    error: HttpError::Status(status),
                };
        }
        assert!(heard_gone, "the event stream says the origin is gone");
        // Waiting again waits for a peer instead of failing at once.
        let again = tokio::time::timeout(Duration::from_secs(2), torrent.wait()).await;
        assert!(again.is_err(), "{again:?}");
        assert_eq!(answered.load(Ordering::SeqCst), asked, "asked no more");
    }
}

/// A magnet link naming `info_hash` with these extra `key=url` parameters.
fn magnet(info_hash: InfoHash, params: &[(&str, &str)]) -> String {
    let mut link = format!("magnet:?xt=urn:btih:{}", info_hash.to_hex());
    for (key, url) in params {
        let encoded = url.replace(':', "%3A").replace('/', "%2F");
        link.push_str(&format!("&{key}={encoded}"));
    }
    link
}

async fn metainfo_at(url: &str) -> Metainfo {
    let bytes = http_get(url, 1 << 20, Duration::from_secs(10))
        .await
        .unwrap();
    Metainfo::from_bytes(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_with_the_torrents_url_starts_from_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(1_200_000, 5);
    let tracker = tracker_with(&dir.path().join("media"), &data).await;
    let torrent_url = tracker.torrent_url("film.webm");
    let info_hash = metainfo_at(&torrent_url).await.info_hash();
    let client = loopback_client(&dir.path().join("out"));
    let link = magnet(info_hash, &[("dn", "film.webm"), ("xs", &torrent_url)]);
    let torrent = client.add(link).await.unwrap();
    tokio::time::timeout(WAIT, torrent.wait())
        .await
        .expect("complete in time")
        .unwrap();
    assert_eq!(torrent.info_hash(), info_hash);
    assert!(std::fs::read(dir.path().join("out/film.webm")).unwrap() == data);

    // An `xs` serving another torrent is refused, naming both.
    let other = InfoHash::of(b"another torrent");
    let wrong = magnet(other, &[("xs", &torrent_url)]);
    match client.add(wrong).await {
        Err(AddError::Load(LoadError::Magnet(MagnetError::WrongTorrent { expected, got }))) => {
            assert_eq!((expected, got), (other, info_hash));
        }
        other => panic!("{other:?}"),
    }
    // Neither a .torrent URL nor a tracker: nowhere to get the metadata.
    match client.add(magnet(other, &[])).await {
        Err(AddError::Load(LoadError::MagnetWithoutSource)) => {}
        other => panic!("{other:?}"),
    }
}

/// Serves `body` to every request on a free loopback port; returns its URL
/// and the count of requests answered.
async fn serve_bytes(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/film.torrent", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            count.fetch_add(1, Ordering::SeqCst);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
    });
    (url, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_with_only_xs_and_ws_downloads_from_the_links_web_seed() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(1_100_000, 9);
    let tracker = tracker_with(&dir.path().join("media"), &data).await;
    // The `.torrent` at the `xs` is the info dictionary alone (16 KiB
    // pieces: no other torrent has its infohash): no tracker, no web seed.
    // The file can come only from the link's `ws`, and no peer exists.
    let bare = TorrentBuilder::new()
        .piece_length(16 << 10)
        .build_from_reader("film.webm", data.as_slice())
        .unwrap();
    assert!(bare.web_seeds().is_empty() && bare.trackers().is_empty());
    let (xs, asked) = serve_bytes(bare.to_bytes()).await;
    let ws = tracker.media_url("film.webm");
    let link = magnet(bare.info_hash(), &[("xs", &xs), ("ws", &ws)]);
    let client = loopback_client(&dir.path().join("out"));
    let torrent = client.add(link).await.unwrap();
    tokio::time::timeout(WAIT, torrent.wait())
        .await
        .expect("complete in time")
        .unwrap();
    assert!(std::fs::read(dir.path().join("out/film.webm")).unwrap() == data);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the `.torrent` from the `xs`"
    );
    assert_eq!(torrent.metainfo().web_seeds(), [ws]);
    let stats = torrent.state().stats;
    assert_eq!((stats.http_bytes, stats.p2p_bytes), (data.len() as u64, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_with_only_a_tracker_gets_the_metadata_and_file_from_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(1_500_000, 8);
    let tracker = tracker_with(&dir.path().join("media"), &data).await;
    let (_seeder, seeding, fetcher) = seeder_and_fetcher(&tracker, dir.path()).await;
    let info_hash = seeding.info_hash();
    let link = magnet(info_hash, &[("tr", &tracker.announce_url())]);
    // No web seed: the metadata and every byte come from the seeder.
    let fetching = tokio::time::timeout(WAIT, fetcher.add_with(link, no_web_seed()))
        .await
        .expect("metadata in time")
        .unwrap();
    assert_eq!(fetching.info_hash(), info_hash);
    tokio::time::timeout(WAIT, fetching.wait())
        .await
        .expect("complete in time")
        .unwrap();
    assert!(std::fs::read(dir.path().join("out/film.webm")).unwrap() == data);
    assert_eq!(fetching.state().stats.http_bytes, 0);
    // The link's tracker is the torrent's now.
    assert_eq!(fetching.metainfo().trackers(), [tracker.announce_url()]);

    // A link nobody seeds gives up after the configured time.
    let impatient = Client::new(ClientConfig {
        metadata_timeout: Duration::from_millis(1500),
        ..ClientConfig::loopback()
    });
    let nobody = magnet(InfoHash::of(b"nobody"), &[("tr", &tracker.announce_url())]);
    match impatient.add(nobody).await {
        Err(AddError::Load(LoadError::MetadataTimeout(t))) => {
            assert_eq!(t, Duration::from_millis(1500));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_download_starts_on_the_connection_that_gave_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(1_500_000, 11);
    let tracker = tracker_with(&dir.path().join("media"), &data).await;
    let (_seeder, seeding, fetcher) = seeder_and_fetcher(&tracker, dir.path()).await;
    let mut seen = seeding.events();
    let link = magnet(seeding.info_hash(), &[("tr", &tracker.announce_url())]);
    let fetching = tokio::time::timeout(WAIT, fetcher.add_with(link, no_web_seed()))
        .await
        .expect("metadata in time")
        .unwrap();
    tokio::time::timeout(WAIT, fetching.wait())
        .await
        .expect("complete in time")
        .unwrap();
    assert!(std::fs::read(dir.path().join("out/film.webm")).unwrap() == data);
    assert_eq!(fetching.state().stats.http_bytes, 0);

    // The seeder met the fetcher once: the connection that gave the
    // metadata carried the download (before, the fetch's connection was
    // closed and a second one opened). It closes once both hold it all,
    // by whichever side sees it first.
    let mut connected = 0;
    let mut closed = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), seen.next()).await
    {
        match event {
            Event::PeerConnected { .. } => connected += 1,
            Event::PeerDisconnected { reason, .. } => closed.push(reason),
            _ => {}
        }
    }
    assert_eq!(connected, 1, "closed: {closed:?}");
    assert!(closed.len() <= 1, "{closed:?}");
}
