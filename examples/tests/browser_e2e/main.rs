//! The browser end to end: the `server` example, a native seeder and two
//! headless Chromium pages of the demo, in a network namespace this test
//! makes (re-running itself under `unshare -n`), so nothing leaves the
//! machine and Chromium connects its peers on loopback.
//!
//! The seeder is the `peer` example (`peer seed`), its upload capped, and
//! the origin is capped too. Page A downloads the sample while it plays; page B then starts from
//! the sample's magnet link (no `xs`: its metadata comes from peers) pasted into the search box,
//! and gets at least half of its bytes from
//! peers. Both pages' SHA-256 of the
//! file must equal the sample's, and A's video must have played before its
//! download completed. Screenshots go to `target/artifacts/`.
//!
//! Needs: Chromium and chromedriver (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`, or `$CHROMIUM` and `$CHROMEDRIVER`), `unshare`
//! and `ip`, and root or unprivileged user namespaces; the wasm package is
//! built first if it is stale (`.ci/install` installs everything).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../browser/harness.rs"]
mod harness;
#[path = "../browser/webdriver.rs"]
mod webdriver;

mod magnet_web_seed;
mod two_windows;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chunkswarm_core::magnet::Magnet;
use chunkswarm_core::metainfo::Metainfo;
use chunkswarm_examples::demo::sample_media_dir;
use harness::{
    DEMO_STATE, Running, artifacts, browser, in_namespace, pkg_dir, save_log, start_chromedriver,
    wait_for,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use webdriver::Session;

const TEST_NAME: &str = "two_pages_and_a_native_seeder_share_the_sample";
const SERVER: &str = "127.0.0.1:8080";
/// Each test runs browsers and builds the wasm package: one at a time.
static BROWSERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    BROWSERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// The origin's cap: slow enough that page A plays while it downloads.
const ORIGIN_RATE: &str = "32k";
/// The native seeder's upload cap, for the same reason.
const SEEDER_RATE: &str = "128k";
const PAGE_TIMEOUT: Duration = Duration::from_secs(90);
/// Page A's seek: from early in the 40 s video to near its end, long before
/// those pieces would arrive in order.
const SEEK: Seek = Seek {
    after: 2.0,
    to: 35.0,
};

/// Seek the video to `to` seconds once it has played `after` seconds.
#[derive(Debug, Clone, Copy)]
struct Seek {
    after: f64,
    to: f64,
}

#[test]
fn two_pages_and_a_native_seeder_share_the_sample() {
    let _turn = one_at_a_time();
    if in_namespace(TEST_NAME) {
        inside_the_namespace();
    }
}

/// The `server` example on [`SERVER`] with its origin capped at
/// `origin_rate`, up and healthy, and chromedriver beside it.
fn start_server(
    origin_rate: &str,
    rust_log: &str,
    artifacts: &Path,
) -> (Running, Running, webdriver::Driver) {
    let pkg = pkg_dir();
    let mut server = Running::spawn(
        "the server",
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args([
                "--addr",
                SERVER,
                "--origin-rate",
                origin_rate,
                "--pkg",
                &pkg,
            ])
            .env("RUST_LOG", rust_log),
        &artifacts.join("server.log"),
    );
    let (chromedriver, webdriver) = start_chromedriver(artifacts);
    wait_for("the server", Duration::from_secs(30), || {
        server.check();
        http_get("/healthz").is_some_and(|(status, _)| status == 200)
    });
    (server, chromedriver, webdriver)
}

fn http_get(path: &str) -> Option<(u16, Vec<u8>)> {
    harness::http_get(SERVER, path)
}

fn inside_the_namespace() {
    let artifacts = artifacts();
    let (mut server, _chromedriver, webdriver) =
        start_server(ORIGIN_RATE, "info,chunkswarm_tracker=debug", &artifacts);

    // The sample and its torrent, as the server makes it.
    let sample = std::fs::read(sample_media_dir().join("sample.webm")).unwrap();
    let sha256 = hex::encode(Sha256::digest(&sample));
    let (status, torrent) = http_get("/torrents/sample.webm.torrent").unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&torrent));
    let metainfo = Metainfo::from_bytes(&torrent).unwrap();
    let info = metainfo.info().clone();
    assert_eq!(info.layout().piece_length(), 128 << 10);
    eprintln!(
        "sample: {} bytes in {} pieces, infohash {}",
        sample.len(),
        info.layout().piece_count(),
        info.info_hash()
    );

    // The native seeder: the `peer` example, with a capped upload.
    let torrent_url = format!("http://{SERVER}/torrents/sample.webm.torrent");
    let mut seeder = Running::spawn(
        "the native seeder",
        Command::new(env!("CARGO_BIN_EXE_peer"))
            .arg("seed")
            .arg(sample_media_dir().join("sample.webm"))
            .args(["--torrent", &torrent_url, "--upload-limit", SEEDER_RATE])
            .args(["--loopback", "--duration", "300", "-v"]),
        &artifacts.join("seeder.log"),
    );
    // The catalog counts it as a seeder once it has announced.
    wait_for("the seeder's announce", Duration::from_secs(30), || {
        seeder.check();
        http_get("/api/search?q=sample").is_some_and(|(_, body)| {
            let found: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            found["results"][0]["seeders"].as_u64().unwrap_or(0) >= 1
        })
    });

    let url = format!("http://{SERVER}/?autoplay=sample.webm");
    let (page_a, profile_a) = browser(&webdriver, "a");
    page_a.goto(&url).unwrap();
    let a = finish(
        &page_a,
        "A",
        &artifacts,
        Some(&artifacts.join("demo-downloading.png")),
        Some(SEEK),
    );
    assert_eq!(a["sha256"].as_str(), Some(sha256.as_str()), "page A's file");
    // It played before the download completed.
    let played = a["currentTimeBeforeDone"].as_f64().unwrap_or(0.0);
    assert!(
        played >= 1.0,
        "page A's video played only to {played} s before the download completed"
    );
    // The seek took, and the video played on from there while the download
    // went on: the pieces at the seek target came first. (Without the seek
    // the video could not be near the target before the download completes.)
    assert!(
        played >= SEEK.to + 1.0,
        "page A's video reached only {played} s before the download completed, \
         not playing on from its seek to {} s",
        SEEK.to
    );

    // Only the native seeder (and the origin) could serve page A.
    let a_p2p = a["stats"]["p2pBytes"].as_f64().unwrap_or(0.0);
    assert!(a_p2p > 0.0, "page A got nothing from the native seeder");

    // Page B starts from the sample's magnet link, pasted into the search
    // box. The link names no `.torrent` (`xs`): the metadata comes from the
    // peers (the native seeder or page A) over ut_metadata.
    let magnet = Magnet::from_metainfo(&metainfo);
    assert!(magnet.sources().is_empty());
    let (page_b, profile_b) = browser(&webdriver, "b");
    page_b.goto(&format!("http://{SERVER}/")).unwrap();
    wait_for("page B's client", Duration::from_secs(60), || {
        page_b
            .eval("return window.chunkswarmDemo && window.chunkswarmDemo.ready;")
            .is_ok_and(|ready| ready == true)
    });
    // Its search results show each entry's magnet link, the catalog's.
    let (_, found) = http_get("/api/search?q=").unwrap();
    let found: Value = serde_json::from_slice(&found).unwrap();
    let listed = found["results"][0]["magnet"].as_str().unwrap().to_owned();
    let mut shown = Value::Null;
    wait_for("page B's results", Duration::from_secs(30), || {
        shown = page_b
            .eval("const a = document.querySelector('#results a.magnet'); return a && a.getAttribute('href');")
            .unwrap_or(Value::Null);
        !shown.is_null()
    });
    assert_eq!(
        shown.as_str(),
        Some(listed.as_str()),
        "page B's magnet link"
    );
    page_b
        .eval(&format!(
            "document.getElementById('search-input').value = {}; \
             document.getElementById('search-form').requestSubmit(); return null;",
            Value::String(magnet.to_string())
        ))
        .unwrap();
    let b = finish(&page_b, "B", &artifacts, None, None);
    assert_eq!(b["sha256"].as_str(), Some(sha256.as_str()), "page B's file");
    let total = b["stats"]["totalBytes"].as_f64().unwrap();
    let p2p = b["stats"]["p2pBytes"].as_f64().unwrap();
    assert_eq!(total, sample.len() as f64);
    assert!(
        p2p * 2.0 >= total,
        "page B got {p2p} of {total} bytes from peers, less than half"
    );

    // Let both pages show their final state, then keep pictures of them.
    std::thread::sleep(Duration::from_secs(2));
    page_b.set_window(1280, 1500).unwrap();
    page_b.screenshot(&artifacts.join("demo.png")).unwrap();
    page_b.set_window(390, 1700).unwrap();
    page_b
        .screenshot(&artifacts.join("demo-phone.png"))
        .unwrap();
    eprintln!("screenshots in {}", artifacts.display());

    seeder.check();
    drop((page_a, page_b));
    drop((profile_a, profile_b));
    server.check();
}

const LOG: &str = "return Array.from(document.querySelectorAll('#log li')).slice(-60).map(li => li.className + ' ' + li.textContent).join('\\n');";

/// Waits for the page's download to finish and its digest to be known;
/// takes a screenshot to `midway` when half the pieces are in, and seeks the
/// video as `seek` says.
fn finish(
    page: &Session,
    name: &str,
    artifacts: &Path,
    mut midway: Option<&Path>,
    mut seek: Option<Seek>,
) -> Value {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let state = match page.eval(DEMO_STATE) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("page {name}: cannot read its state: {e}");
                Value::Null
            }
        };
        let failed = state["error"].as_str().map(str::to_owned);
        if state["done"] == true && state["sha256"].is_string() {
            save_log(page, &artifacts.join(format!("page-{name}.log")));
            eprintln!(
                "page {name}: done in {:?}: {}",
                started.elapsed(),
                state["stats"]
            );
            return state;
        }
        let verified = state["stats"]["piecesVerified"].as_u64().unwrap_or(0);
        let total = state["stats"]["piecesTotal"].as_u64().unwrap_or(u64::MAX);
        if verified * 2 >= total {
            if let Some(file) = midway.take() {
                page.screenshot(file).unwrap();
            }
        }
        let at = state["currentTimeBeforeDone"].as_f64().unwrap_or(0.0);
        if let Some(Seek { after, to }) = seek {
            if at >= after && state["done"] == false {
                page.eval(&format!(
                    "document.getElementById('video').currentTime = {to}; return true;"
                ))
                .unwrap();
                eprintln!("page {name}: seeked from {at:.1} s to {to} s");
                seek = None;
            }
        }
        if failed.is_some() || started.elapsed() > PAGE_TIMEOUT {
            let _ = page.screenshot(&artifacts.join(format!("failed-{name}.png")));
            save_log(page, &artifacts.join(format!("page-{name}.log")));
            let log = page.eval(LOG).unwrap_or(Value::Null);
            panic!(
                "page {name} did not finish ({}): {state}\npage log:\n{}",
                failed.as_deref().unwrap_or("timed out"),
                log.as_str().unwrap_or("?")
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!(
                "page {name}: {:.0?} verified {}/{} pieces, p2p {} http {} bytes, video at {:.1} s",
                started.elapsed(),
                state["stats"]["piecesVerified"],
                state["stats"]["piecesTotal"],
                state["stats"]["p2pBytes"],
                state["stats"]["httpBytes"],
                state["currentTimeBeforeDone"].as_f64().unwrap_or(0.0)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
