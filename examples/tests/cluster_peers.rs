//! Two native peers on different nodes of a tracker cluster (two trackers
//! sharing a real `redis-server`) exchange a file over WebRTC: the seeder
//! announces to one node, the fetcher to the other, and every byte comes
//! from the peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Child as StdChild, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use chunkswarm_core::metainfo::Metainfo;
use chunkswarm_tracker::{Config, Tracker, serve};
use tokio::process::Command;
use tokio::sync::oneshot;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `redis-server` on a free loopback port, killed on drop.
struct Redis(StdChild, u16);

impl Redis {
    fn start() -> Self {
        let port = free_port();
        let child = StdCommand::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server not found: run .ci/install (Debian package redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child, port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tracker node in cluster mode; stops when dropped.
struct Node {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Node {
    async fn start(redis: &Redis) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tracker = Tracker::new(Config {
            redis: Some(format!("redis://127.0.0.1:{}/", redis.1)),
            ..Config::default()
        })
        .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, tracker, async move {
            let _ = stopped.await;
        }));
        let node = Self { addr, _stop: stop };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !node.healthz().await.contains("cluster: connected") {
            assert!(Instant::now() < deadline, "node did not join the cluster");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        node
    }

    fn announce_url(&self) -> String {
        format!("ws://{}/announce", self.addr)
    }

    async fn healthz(&self) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_announcing_to_different_nodes_exchange_a_file() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis).await, Node::start(&redis).await);
    let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("film.bin");
    std::fs::write(&file, &data).unwrap();
    // No web seed answers: the bytes can only come from the peer.
    let dead = format!("http://127.0.0.1:{}/film.bin", free_port());
    let mut seeder = peer()
        .arg("seed")
        .arg(&file)
        .args(["--loopback", "--json", "--tracker", &one.announce_url()])
        .args(["--web-seed", &dead, "--piece-length", "262144"])
        .spawn()
        .unwrap();
    let torrent = dir.path().join("film.bin.torrent");
    tokio::time::timeout(Duration::from_secs(30), async {
        while Metainfo::from_bytes(&std::fs::read(&torrent).unwrap_or_default()).is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the seeder wrote its torrent");
    tokio::time::sleep(Duration::from_millis(800)).await;

    let out = dir.path().join("copy.bin");
    let fetch = peer()
        .args(["fetch", torrent.to_str().unwrap(), "-o"])
        .arg(&out)
        .args(["--loopback", "--json", "--timeout", "120"])
        .args(["--tracker", &two.announce_url()])
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(180), fetch.wait_with_output())
        .await
        .expect("the fetch finished")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "fetch failed: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["bytes_p2p"], data.len() as u64, "{summary}");
    assert_eq!(summary["bytes_http"], 0, "{summary}");
    assert!(std::fs::read(&out).unwrap() == data, "the copy differs");
    seeder.kill().await.unwrap();
}
