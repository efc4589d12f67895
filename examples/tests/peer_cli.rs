//! The `peer` CLI as separate processes against a real tracker and origin on
//! loopback: several fetchers share one seeder, a corrupt seeder is banned,
//! a killed fetcher does not stop the others, and either kind of source can
//! carry a download alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chunkswarm_core::driver::{
    DriverConfig, DriverIo, PieceStore, StoreError, TorrentSpec, driver,
};
use chunkswarm_core::layout::PieceIndex;
use chunkswarm_core::metainfo::{Info, Metainfo};
use chunkswarm_core::native::{TokioSleeper, WebRtcConfig, WebRtcConnector, connect_tracker};
use chunkswarm_core::piece_map::Bitfield;
use chunkswarm_tracker::{Config, Tracker, serve};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

const MIB: usize = 1 << 20;
/// Every process gets this long; a test that needs it has failed anyway.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(240);

/// Tracker, origin and catalog on 127.0.0.1, serving one file.
struct Server {
    addr: SocketAddr,
    media: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(file: &str, content: &[u8]) -> Self {
        let media = tempfile::tempdir().unwrap();
        std::fs::write(media.path().join(file), content).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let tracker = Tracker::new(Config {
            media_dir: Some(media.path().to_owned()),
            ..Config::default()
        })
        .unwrap();
        tokio::spawn(serve(listener, tracker, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            media,
            _stop: stop,
        }
    }

    fn torrent_url(&self, file: &str) -> String {
        format!("http://{}/torrents/{file}.torrent", self.addr)
    }

    fn tracker_url(&self) -> String {
        format!("ws://{}/announce", self.addr)
    }

    fn media_path(&self, file: &str) -> PathBuf {
        self.media.path().join(file)
    }

    /// Bytes the origin has sent, from `/metrics`.
    async fn origin_bytes(&self) -> u64 {
        let text = http_text(self.addr, "/metrics").await;
        text.lines()
            .find_map(|line| line.strip_prefix("chunkswarm_tracker_origin_bytes_total "))
            .expect("origin byte counter in /metrics")
            .trim()
            .parse()
            .unwrap()
    }

    async fn metainfo(&self, file: &str) -> Metainfo {
        let path = format!("/torrents/{file}.torrent");
        let bytes = chunkswarm_core::native::http_get(
            &format!("http://{}{path}", self.addr),
            1 << 20,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        Metainfo::from_bytes(&bytes).unwrap()
    }
}

/// A plain HTTP/1.1 GET over a raw socket.
async fn http_text(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn content(len: usize, salt: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(salt);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn peer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peer"));
    command
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `peer fetch` as a child process.
fn spawn_fetch(torrent: &str, out: &Path, extra: &[&str]) -> Child {
    peer()
        .args(["fetch", torrent, "-o"])
        .arg(out)
        .args(["--loopback", "--json", "--timeout", "180"])
        .args(extra)
        .spawn()
        .unwrap()
}

/// `peer seed` as a child process, until killed.
fn spawn_seed(file: &Path, extra: &[&str]) -> Child {
    peer()
        .arg("seed")
        .arg(file)
        .args(["--loopback", "--json"])
        .args(extra)
        .spawn()
        .unwrap()
}

/// Waits for a fetch and returns its JSON summary, asserting it succeeded.
async fn finished(child: Child, name: &str) -> Value {
    let output = tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish in time"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed with {}: {stderr}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{name} summary {stdout:?}: {e}; stderr: {stderr}"));
    assert_eq!(summary["complete"], true, "{name}: {summary}");
    summary
}

/// Waits until `peer seed` has written the torrent it made, and a little
/// longer for its announce to land before fetchers' offers go out.
async fn seeding_under(torrent: &Path) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while Metainfo::from_bytes(&std::fs::read(torrent).unwrap_or_default()).is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("seed wrote the torrent");
    tokio::time::sleep(Duration::from_millis(800)).await;
}

fn assert_same_file(path: &Path, expected: &[u8]) {
    let got = std::fs::read(path).unwrap();
    assert_eq!(got.len(), expected.len(), "{} length", path.display());
    assert!(
        got == expected,
        "{} differs from the original",
        path.display()
    );
}

fn u64_of(summary: &Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_fetchers_share_one_seeder_and_spare_the_origin() {
    let data = content(32 * MIB, 1);
    let server = Server::start("film.webm", &data).await;
    let torrent = server.torrent_url("film.webm");
    let mut seeder = spawn_seed(&server.media_path("film.webm"), &["--torrent", &torrent]);
    // Let the seeder announce before the fetchers' offers go out.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let out = tempfile::tempdir().unwrap();
    let fetchers: Vec<(PathBuf, Child)> = (0..4)
        .map(|i| {
            let path = out.path().join(format!("film-{i}.webm"));
            let child = spawn_fetch(&torrent, &path, &["--seed-time", "3"]);
            (path, child)
        })
        .collect();
    let mut p2p = 0;
    for (i, (path, child)) in fetchers.into_iter().enumerate() {
        let summary = finished(child, &format!("fetcher {i}")).await;
        assert_same_file(&path, &data);
        assert_eq!(summary["banned"], 0);
        p2p += u64_of(&summary, "bytes_p2p");
    }
    seeder.kill().await.unwrap();

    let origin = server.origin_bytes().await;
    let file = data.len() as u64;
    eprintln!(
        "origin bytes per file {:.3}, P2P bytes over 4 fetchers {p2p}",
        origin as f64 / file as f64
    );
    assert!(
        origin as f64 <= 1.25 * file as f64,
        "origin sent {origin} bytes for a {file}-byte file"
    );
    assert!(p2p >= 3 * file, "only {p2p} bytes came from peers");
}

/// Serves a torrent's content with one byte of every piece flipped.
#[derive(Debug)]
struct CorruptStore {
    info: Info,
    content: Bytes,
}

#[async_trait::async_trait]
impl PieceStore for CorruptStore {
    async fn verified(&self, info: &Info) -> Result<Bitfield, StoreError> {
        let mut all = Bitfield::new(info.layout().piece_count());
        for piece in info.layout().pieces() {
            all.insert(piece);
        }
        Ok(all)
    }

    async fn read(&self, piece: PieceIndex) -> Result<Bytes, StoreError> {
        let range = self.info.layout().piece_range(piece);
        let mut data = self.content[range.start as usize..range.end as usize].to_vec();
        let middle = data.len() / 2;
        data[middle] ^= 0x5a;
        Ok(Bytes::from(data))
    }

    async fn write(&self, _: PieceIndex, _: Bytes) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_seeder_is_banned_and_the_fetch_completes_byte_exact() {
    let data = content(8 * MIB, 2);
    let server = Server::start("clip.webm", &data).await;
    let meta = server.metainfo("clip.webm").await;

    let io = DriverIo {
        signaling: Some(connect_tracker(&server.tracker_url()).await.unwrap()),
        connector: Some(Arc::new(WebRtcConnector::new(WebRtcConfig::loopback()))),
        sleeper: Arc::new(TokioSleeper),
    };
    let (liar, run) = driver(DriverConfig::seeded(0xbad), io);
    tokio::spawn(run);
    liar.add_torrent(TorrentSpec {
        info: meta.info().clone(),
        store: Arc::new(CorruptStore {
            info: meta.info().clone(),
            content: Bytes::from(data.clone()),
        }),
        origin: None,
        config: Default::default(),
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("clip.webm");
    let summary = finished(
        spawn_fetch(&server.torrent_url("clip.webm"), &path, &[]),
        "fetcher",
    )
    .await;
    assert_same_file(&path, &data);
    assert_eq!(summary["banned"], 1, "{summary}");
    assert_eq!(summary["peers"], 1, "{summary}");
    liar.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_killed_mid_transfer_does_not_stop_the_others() {
    let data = content(16 * MIB, 3);
    let server = Server::start("show.webm", &data).await;
    let torrent = server.torrent_url("show.webm");
    // A slow seeder keeps the transfer going long enough to kill someone.
    let mut seeder = spawn_seed(
        &server.media_path("show.webm"),
        &["--torrent", &torrent, "--upload-limit", "4M"],
    );
    tokio::time::sleep(Duration::from_millis(800)).await;

    let out = tempfile::tempdir().unwrap();
    let mut doomed = spawn_fetch(&torrent, &out.path().join("doomed.webm"), &[]);
    let survivors: Vec<(PathBuf, Child)> = (0..2)
        .map(|i| {
            let path = out.path().join(format!("show-{i}.webm"));
            (
                path.clone(),
                spawn_fetch(&torrent, &path, &["--seed-time", "2"]),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        doomed.try_wait().unwrap().is_none(),
        "the doomed fetcher finished before it could be killed"
    );
    doomed.kill().await.unwrap();
    for (i, (path, child)) in survivors.into_iter().enumerate() {
        finished(child, &format!("survivor {i}")).await;
        assert_same_file(&path, &data);
    }
    seeder.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_peers_a_fetch_completes_from_the_origin_alone() {
    let data = content(4 * MIB + 12_345, 4);
    let server = Server::start("solo.webm", &data).await;
    let out = tempfile::tempdir().unwrap();
    // An existing directory as -o: the torrent's name is used inside it.
    let summary = finished(
        spawn_fetch(&server.torrent_url("solo.webm"), out.path(), &[]),
        "fetcher",
    )
    .await;
    assert_same_file(&out.path().join("solo.webm"), &data);
    assert_eq!(u64_of(&summary, "bytes_http"), data.len() as u64);
    assert_eq!(u64_of(&summary, "bytes_p2p"), 0);
    assert_eq!(summary["peers"], 0);
    // The origin counter the four-fetcher test relies on sees these bytes.
    assert!(server.origin_bytes().await >= data.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_origin_down_a_fetch_completes_from_peers_alone() {
    let data = content(6 * MIB, 5);
    // The server is only the tracker here; the torrent's web seed is dead.
    let server = Server::start("unused.webm", b"x").await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home.bin");
    std::fs::write(&file, &data).unwrap();
    // Without --torrent, seed makes home.bin.torrent naming the tracker
    // and web seed given.
    let mut seeder = spawn_seed(
        &file,
        &[
            "--tracker",
            &server.tracker_url(),
            "--web-seed",
            &format!("http://{dead}/home.bin"),
            "--piece-length",
            "262144",
        ],
    );
    let torrent = dir.path().join("home.bin.torrent");
    seeding_under(&torrent).await;

    let out = dir.path().join("copy.bin");
    let summary = finished(spawn_fetch(torrent.to_str().unwrap(), &out, &[]), "fetcher").await;
    assert_same_file(&out, &data);
    assert_eq!(u64_of(&summary, "bytes_p2p"), data.len() as u64);
    assert_eq!(u64_of(&summary, "bytes_http"), 0);
    seeder.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_with_the_torrents_url_fetches_with_no_peer() {
    let data = content(3 * MIB + 777, 9);
    let server = Server::start("linked.webm", &data).await;
    let info_hash = server.metainfo("linked.webm").await.info_hash();
    let encode = |url: &str| url.replace(':', "%3A").replace('/', "%2F");
    let xs = encode(&server.torrent_url("linked.webm"));
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=linked.webm&xs={xs}",
        info_hash.to_hex()
    );
    let out = tempfile::tempdir().unwrap();
    let summary = finished(spawn_fetch(&link, out.path(), &["--no-tracker"]), "fetcher").await;
    assert_same_file(&out.path().join("linked.webm"), &data);
    assert_eq!(u64_of(&summary, "bytes_http"), data.len() as u64);

    // A link whose `xs` serves another torrent, and one with no `xs`.
    let other = format!("magnet:?xt=urn:btih:{}&xs={xs}", "ab".repeat(20));
    let bare = format!("magnet:?xt=urn:btih:{}", info_hash.to_hex());
    for (link, expected) in [
        (other, "not the link's"),
        (bare, "no http(s) `xs`"),
        ("magnet:?dn=x".to_owned(), "bad magnet link"),
    ] {
        let output = peer()
            .args(["fetch", &link, "-o"])
            .arg(out.path())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{link} succeeded");
        assert!(stderr.contains(expected), "{link}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_with_only_a_tracker_gets_its_metadata_from_the_seeder() {
    let data = content(13 * MIB + 4_321, 11);
    // The server is only the tracker: no web seed, no .torrent to fetch.
    let server = Server::start("unused.webm", b"x").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.bin");
    std::fs::write(&file, &data).unwrap();
    // 16 KiB pieces: the metadata spans several ut_metadata pieces.
    let mut seeder = spawn_seed(
        &file,
        &[
            "--tracker",
            &server.tracker_url(),
            "--piece-length",
            "16384",
        ],
    );
    let torrent = dir.path().join("shared.bin.torrent");
    seeding_under(&torrent).await;
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    assert!(meta.info().encoded().len() > 16 * 1024);
    let link = format!(
        "magnet:?xt=urn:btih:{}&tr={}",
        meta.info_hash().to_hex(),
        server.tracker_url().replace(':', "%3A").replace('/', "%2F")
    );

    let out = tempfile::tempdir().unwrap();
    let summary = finished(spawn_fetch(&link, out.path(), &[]), "fetcher").await;
    assert_same_file(&out.path().join("shared.bin"), &data);
    assert_eq!(u64_of(&summary, "bytes_p2p"), data.len() as u64);
    assert_eq!(u64_of(&summary, "bytes_http"), 0);

    // A link to a torrent nobody seeds waits for its metadata, then fails.
    let nobody = format!("magnet:?xt=urn:btih:{}", "cd".repeat(20));
    let output = peer()
        .args(["fetch", &nobody, "-o"])
        .arg(out.path())
        .args([
            "--loopback",
            "--timeout",
            "3",
            "--tracker",
            &server.tracker_url(),
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no peer gave the torrent's metadata within 3 s"),
        "{stderr}"
    );
    seeder.kill().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_a_failing_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.torrent");
    std::fs::write(&garbage, b"d8:announce").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "fetch".into(),
                garbage.display().to_string(),
                "-o".into(),
                "x".into(),
            ],
            "not a valid torrent",
        ),
        (
            vec![
                "fetch".into(),
                dir.path().join("missing.torrent").display().to_string(),
                "-o".into(),
                "x".into(),
            ],
            "cannot read",
        ),
        (
            vec![
                "seed".into(),
                dir.path().join("nothing-here").display().to_string(),
            ],
            "cannot seed",
        ),
        (
            vec![
                "seed".into(),
                dir.path().display().to_string(),
                "--no-tracker".into(),
            ],
            "seeding needs a tracker",
        ),
        (
            vec![
                "seed".into(),
                garbage.display().to_string(),
                "--tracker".into(),
                "http://not-a-websocket".into(),
            ],
            "ws:// or wss://",
        ),
    ];
    for (args, expected) in cases {
        let output = peer().args(&args).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn seeding_a_file_that_does_not_match_its_torrent_is_refused() {
    let data = content(MIB + 77, 6);
    let server = Server::start("orig.webm", &data).await;
    let dir = tempfile::tempdir().unwrap();
    let mut changed = data.clone();
    changed[MIB / 2] ^= 1;
    let file = dir.path().join("orig.webm");
    std::fs::write(&file, &changed).unwrap();
    let output = peer()
        .arg("seed")
        .arg(&file)
        .args(["--torrent", &server.torrent_url("orig.webm"), "--loopback"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("does not match the torrent: 1 of"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_file_torrent_arrives_as_its_folder_from_the_web_seed_and_from_peers() {
    let server = Server::start("unused.webm", b"x").await;
    let album = server.media_path("album");
    let files: [(&str, usize); 3] = [
        ("one.webm", 700_001),
        ("disc 2/two.webm", 90_000),
        ("disc 2/three.webm", 1_300_000),
    ];
    std::fs::create_dir_all(album.join("disc 2")).unwrap();
    for (i, (name, len)) in files.iter().enumerate() {
        std::fs::write(album.join(name), content(*len, 10 + i as u8)).unwrap();
    }
    // The web seed is the media root: BEP 19 puts the files at
    // /media/album/one.webm, /media/album/disc%202/two.webm, ...
    let web_seed = format!("http://{}/media/", server.addr);
    let mut seeder = spawn_seed(
        &album,
        &[
            "--tracker",
            &server.tracker_url(),
            "--web-seed",
            &web_seed,
            "--piece-length",
            "262144",
        ],
    );
    let torrent = server.media_path("album.torrent");
    seeding_under(&torrent).await;
    let torrent = torrent.to_str().unwrap().to_owned();

    let out = tempfile::tempdir().unwrap();
    let by_http = out.path().join("by-http");
    let by_peers = out.path().join("by-peers");
    let http_only = spawn_fetch(&torrent, &by_http, &["--no-tracker"]);
    let peers_only = spawn_fetch(&torrent, &by_peers, &["--no-web-seed"]);
    let total: u64 = files.iter().map(|(_, len)| *len as u64).sum();
    let http = finished(http_only, "HTTP-only fetcher").await;
    assert_eq!(u64_of(&http, "bytes_http"), total);
    let p2p = finished(peers_only, "peers-only fetcher").await;
    assert_eq!(u64_of(&p2p, "bytes_p2p"), total);
    for (name, _) in files {
        let original = std::fs::read(album.join(name)).unwrap();
        assert_same_file(&by_http.join(name), &original);
        assert_same_file(&by_peers.join(name), &original);
    }
    seeder.kill().await.unwrap();
}
