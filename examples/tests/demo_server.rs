//! The demo server's routes in process: the page, its files, the wasm
//! package folder (and nothing outside it), the tracker still on `/` for
//! WebSocket clients, and the origin under its cap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chunkswarm_examples::demo::{self, DemoOptions};
use chunkswarm_tracker::{Config, Tracker, serve_app};

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

fn request(addr: SocketAddr, text: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

/// The status line and headers of an answer whose connection stays open.
fn head_only(addr: SocketAddr, text: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    String::from_utf8_lossy(&raw).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_page_package_tracker_and_a_capped_origin() {
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(pkg.path().join("chunkswarm_wasm.js"), "export default 1;").unwrap();
    std::fs::write(pkg.path().join("chunkswarm_wasm_bg.wasm"), b"\0asm").unwrap();
    std::fs::write(pkg.path().join("secret.txt"), "no").unwrap();
    let outside = pkg.path().parent().unwrap().join("outside.js");
    std::fs::write(&outside, "no").unwrap();

    let tracker = Tracker::new(Config {
        media_dir: Some(demo::sample_media_dir()),
        piece_length: demo::DEMO_PIECE_LENGTH,
        ..Config::default()
    })
    .unwrap();
    let rate = 512 << 10;
    let app = demo::app(
        tracker.clone(),
        &DemoOptions {
            pkg_dir: pkg.path().to_owned(),
            origin_rate: Some(rate),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_app(listener, tracker, app, async {
        let _ = stopped.await;
    }));

    tokio::task::spawn_blocking(move || {
        // The page at the root, its files under /app.
        let page = get(addr, "/");
        assert_eq!(page.status, 200);
        assert!(page.head.contains("content-type: text/html"));
        assert!(String::from_utf8_lossy(&page.body).contains("/app/demo.js"));
        for (file, kind) in [
            ("demo.js", "text/javascript"),
            ("view.js", "text/javascript"),
            ("demo.css", "text/css"),
            ("icon.svg", "image/svg+xml"),
        ] {
            let answer = get(addr, &format!("/app/{file}"));
            assert_eq!(answer.status, 200, "{file}");
            assert!(answer.head.contains(kind), "{file}: {}", answer.head);
        }
        assert_eq!(get(addr, "/app/missing.js").status, 404);

        // The package: its files, nothing else.
        let js = get(addr, "/pkg/chunkswarm_wasm.js");
        assert_eq!(js.status, 200);
        assert!(js.head.contains("service-worker-allowed: /"));
        let wasm = get(addr, "/pkg/chunkswarm_wasm_bg.wasm");
        assert!(wasm.head.contains("content-type: application/wasm"));
        for bad in [
            "/pkg/secret.txt",
            "/pkg/../outside.js",
            "/pkg/%2e%2e/outside.js",
            "/pkg/..%2foutside.js",
            "/pkg/.hidden.js",
            "/pkg/missing.js",
        ] {
            assert_eq!(get(addr, bad).status, 404, "{bad}");
        }

        // A WebSocket upgrade on / still reaches the tracker.
        let upgrade = head_only(
            addr,
            &format!(
                "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ),
        );
        assert!(upgrade.starts_with("HTTP/1.1 101"), "{upgrade}");

        // The catalog lists the sample; its torrent has the demo's pieces.
        let found = get(addr, "/api/search?q=test%20pattern");
        let found: serde_json::Value = serde_json::from_slice(&found.body).unwrap();
        assert_eq!(found["results"][0]["file"], "sample.webm");
        let torrent = get(addr, "/torrents/sample.webm.torrent");
        let torrent = chunkswarm_core::metainfo::Metainfo::from_bytes(&torrent.body).unwrap();
        assert_eq!(torrent.info().layout().piece_length(), 128 << 10);

        // The origin serves the sample, no faster than the cap.
        let sample = std::fs::read(demo::sample_media_dir().join("sample.webm")).unwrap();
        let started = Instant::now();
        let range = request(
            addr,
            &format!(
                "GET /media/sample.webm HTTP/1.1\r\nHost: {addr}\r\nRange: bytes=0-1048575\r\nConnection: close\r\n\r\n"
            ),
        );
        let took = started.elapsed();
        assert_eq!(range.status, 206);
        assert!(range.body == sample[..1 << 20]);
        // 1 MiB at 512 KiB/s: about two seconds.
        assert!(
            took >= Duration::from_millis(1800),
            "1 MiB came in {took:?}"
        );
    })
    .await
    .unwrap();

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
