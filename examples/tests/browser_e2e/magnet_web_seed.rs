//! A magnet link with only an `xs` and a `ws`, and no peer at all: the page
//! fetches the `.torrent` from the `xs` and the whole file from the `ws`.
//!
//! The `.torrent` is the test's own (64 KiB pieces, so no other torrent
//! shares its infohash) and names no tracker and no web seed: the file can
//! come only from the link's `ws`, the server's origin. A plain HTTP server
//! in this process serves it on another loopback port (with CORS, as any
//! origin must for a page elsewhere) and counts its requests.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chunkswarm_core::magnet::Magnet;
use chunkswarm_core::metainfo::{Metainfo, TorrentBuilder};
use chunkswarm_examples::demo::sample_media_dir;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::harness::{artifacts, browser, in_namespace, wait_for};
use super::{SERVER, finish, one_at_a_time, start_server};

const TEST_NAME: &str = "magnet_web_seed::a_magnet_with_only_xs_and_ws_downloads_without_peers";

#[test]
fn a_magnet_with_only_xs_and_ws_downloads_without_peers() {
    let _turn = one_at_a_time();
    if in_namespace(TEST_NAME) {
        inside_the_namespace();
    }
}

fn inside_the_namespace() {
    let artifacts = artifacts().join("magnet-web-seed");
    std::fs::create_dir_all(&artifacts).unwrap();
    let (mut server, _chromedriver, webdriver) = start_server("0", "info", &artifacts);
    let path = sample_media_dir().join("sample.webm");
    let sample = std::fs::read(&path).unwrap();
    let sha256 = hex::encode(Sha256::digest(&sample));

    let web_seed = format!("http://{SERVER}/media/sample.webm");
    let linked = TorrentBuilder::new()
        .piece_length(64 << 10)
        .web_seed(&web_seed)
        .build_from_path(&path)
        .unwrap();
    // The `.torrent` the `xs` serves: the info dictionary alone.
    let bare = Metainfo::from_info(linked.info().clone());
    assert!(bare.web_seeds().is_empty() && bare.trackers().is_empty());
    let (xs, requests) = serve_torrent(bare.to_bytes());
    let magnet = Magnet::from_metainfo(&linked).with_source(&xs);
    assert!(magnet.trackers().is_empty());
    assert_eq!(magnet.web_seeds(), [web_seed]);
    let link = magnet.to_string();
    eprintln!("the link: {link}");

    let (page, profile) = browser(&webdriver, "magnet");
    page.goto(&format!("http://{SERVER}/")).unwrap();
    wait_for("the page's client", Duration::from_secs(60), || {
        page.eval("return window.chunkswarmDemo && window.chunkswarmDemo.ready;")
            .is_ok_and(|ready| ready == true)
    });
    page.eval(&format!(
        "document.getElementById('search-input').value = {}; \
         document.getElementById('search-form').requestSubmit(); return null;",
        Value::String(link)
    ))
    .unwrap();
    let state = finish(&page, "magnet", &artifacts, None, None);

    assert_eq!(state["sha256"].as_str(), Some(sha256.as_str()), "the file");
    assert_eq!(
        state["infoHash"].as_str(),
        Some(&*linked.info_hash().to_hex())
    );
    let bytes = |field: &str| state["stats"][field].as_f64().unwrap_or(-1.0);
    assert_eq!(bytes("totalBytes"), sample.len() as f64);
    assert_eq!(bytes("p2pBytes"), 0.0, "no peer could serve it");
    assert!(
        bytes("httpBytes") >= sample.len() as f64,
        "{}",
        state["stats"]
    );
    assert!(
        requests.load(Ordering::Relaxed) >= 1,
        "the `xs` was not asked"
    );

    drop(page);
    drop(profile);
    server.check();
}

/// Serves `torrent` to every GET on a free loopback port, in a thread;
/// returns its URL and the count of requests answered.
fn serve_torrent(torrent: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/linked.torrent", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let answer = if head.starts_with(b"GET /linked.torrent ") {
                counted.fetch_add(1, Ordering::Relaxed);
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-bittorrent\r\n\
                     Access-Control-Allow-Origin: *\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    torrent.len()
                )
                .into_bytes();
                answer.extend_from_slice(&torrent);
                answer
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            };
            let _ = stream.write_all(&answer);
        }
    });
    (url, requests)
}
