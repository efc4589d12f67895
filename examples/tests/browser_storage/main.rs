//! Film-sized files in a browser tab: the demo page keeps pieces on OPFS,
//! with bounded memory, and resumes after a reload.
//!
//! `a_film_sized_file_survives_a_reload_and_seeds_a_second_page`: the
//! `server` example serves a real video of about 1 GiB (`CHUNKSWARM_FILM_MIB`
//! sets another size; ffmpeg makes it of noise, which does not compress) as
//! `film.webm`, a native `peer` seeds it, and page A downloads it from both.
//! The video plays while it downloads, and then from 80 % of its length
//! after a seek there long before those pieces would have come in order.
//! At about half way A is reloaded: it must find its pieces stored,
//! verified again, play again, and fetch no more than what was missing plus
//! one piece per source in flight (it stops streaming once it plays, so the
//! rest comes at full speed rather than a window ahead of the playhead). Its SHA-256, computed by
//! streaming the stored file, must be the file's. Then the seeder stops and
//! page B, with no web seed, fetches the whole file from A. The peak
//! memory of each page's renderer must stay at or below 300 MiB, whatever
//! the file's size. The measure is the renderer's private memory footprint
//! (`RssAnon` + `VmSwap`), as Chromium defines it on Linux and reports it
//! in its task manager and over the DevTools protocol: resident memory
//! also counts Chromium's code pages, about 130 MiB that every renderer
//! maps and shares, which no page can shed. Resident memory is printed too,
//! and must stay below half the file: the page does not hold the file.
//!
//! `a_quota_below_the_file_pauses_the_torrent`: with the origin's storage
//! quota set below the file size (DevTools `Storage.overrideQuotaForOrigin`)
//! the page reports `storage` `full` and stays paused without fetching;
//! once the quota is raised, `resume()` completes the download.
//!
//! Both run in a network namespace of their own, like `browser_e2e`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../browser/harness.rs"]
mod harness;
#[path = "../browser/webdriver.rs"]
mod webdriver;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chunkswarm_core::metainfo::Metainfo;
use harness::{
    DEMO_STATE, RendererMemory, Running, artifacts, browser, in_namespace, pkg_dir, random_file,
    save_log, start_chromedriver, wait_for,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use webdriver::Session;

/// The most a page's renderer may hold of its own, in MiB, whatever the
/// file's size.
const OWN_MEMORY_LIMIT_MIB: f64 = 300.0;
const SERVER: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";
const PAGE_TIMEOUT: Duration = Duration::from_secs(900);
/// For the quota test's steps on a small file.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn http_get(path: &str) -> Option<(u16, Vec<u8>)> {
    harness::http_get(SERVER, path)
}

/// The server on a media folder holding `film.webm`, up and answering.
fn start_server(media: &Path, artifacts: &Path) -> Running {
    let mut server = Running::spawn(
        "the server",
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", SERVER, "--origin-rate", "0", "--pkg", &pkg_dir()])
            .arg("--media")
            .arg(media),
        &artifacts.join("storage-server.log"),
    );
    // Hashing a GiB for the torrent takes the server a few seconds.
    wait_for("the server", Duration::from_secs(120), || {
        server.check();
        http_get("/torrents/film.webm.torrent").is_some_and(|(status, _)| status == 200)
    });
    server
}

fn state(page: &Session) -> Value {
    page.eval(DEMO_STATE).unwrap_or(Value::Null)
}

/// Polls the page (and the renderer memory) until `until` holds for its
/// state; panics on a page error or after `timeout`.
fn watch(
    page: &Session,
    name: &str,
    memory: &mut RendererMemory,
    timeout: Duration,
    mut until: impl FnMut(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        memory.sample();
        let state = state(page);
        if until(&state) {
            return state;
        }
        if state["error"].is_string() || started.elapsed() > timeout {
            save_log(page, &artifacts().join(format!("storage-page-{name}.log")));
            panic!("page {name}: {state}");
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            save_log(page, &artifacts().join(format!("storage-page-{name}.log")));
            eprintln!(
                "page {name}: {:.0?} {}/{} pieces, p2p {} http {} bytes, renderer peak {:.0} MiB",
                started.elapsed(),
                state["stats"]["piecesVerified"],
                state["stats"]["piecesTotal"],
                state["stats"]["p2pBytes"],
                state["stats"]["httpBytes"],
                memory.peak_mib()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// Writes a playable WebM of about `mib` MiB to `path` (ffmpeg: ten seconds
/// of VP8 noise at 5 Mbit/s with an Opus tone, repeated; seek index in
/// front, a key frame every 2 s); returns its hex SHA-256. The bitrate is a
/// feature film's (2 to 8 GiB over two hours): Chromium's media cache in
/// the renderer grows with it (20 Mbit/s raised page A's peak by 33 MiB).
fn film_video(path: &Path, mib: u64) -> String {
    let dir = path.parent().unwrap();
    let segment = dir.join("segment.webm");
    // Arguments split at spaces (no path here has one), then the output.
    let ffmpeg = |args: &str, output: &Path| {
        let status = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y"])
            .args(args.split_whitespace())
            .arg(output)
            .status()
            .expect("ffmpeg (Debian's ffmpeg; .ci/install installs it)");
        assert!(status.success(), "ffmpeg {args}: {status}");
    };
    ffmpeg(
        "-f rawvideo -pix_fmt yuv420p -s 640x360 -r 25 -i /dev/urandom \
         -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 \
         -c:v libvpx -deadline realtime -cpu-used 8 -g 50 \
         -b:v 5M -minrate 5M -maxrate 5M -bufsize 5M -c:a libopus -b:a 64k -shortest",
        &segment,
    );
    let segment_bytes = std::fs::metadata(&segment).unwrap().len();
    let repeats = ((mib << 20) / segment_bytes).max(1);
    let list = dir.join("segments.txt");
    let line = format!("file '{}'\n", segment.display());
    std::fs::write(&list, line.repeat(repeats as usize)).unwrap();
    ffmpeg(
        &format!(
            "-f concat -safe 0 -i {} -c copy -cues_to_front 1",
            list.display()
        ),
        path,
    );
    std::fs::remove_file(&segment).unwrap();
    std::fs::remove_file(&list).unwrap();
    let mut file = std::fs::File::open(path).unwrap();
    let mut hash = Sha256::new();
    std::io::copy(&mut file, &mut hash).unwrap();
    hex::encode(hash.finalize())
}

/// The demo's video element: where it is, how long it is, whether it failed.
const VIDEO: &str = "const v = document.getElementById('video'); \
    return { time: v.currentTime, duration: v.duration, error: v.error ? v.error.message || String(v.error.code) : null };";

fn stop_streaming(page: &Session) {
    page.eval("window.chunkswarmStopStreaming(); return null;")
        .unwrap();
}

/// Waits until the video has played to `at` seconds; panics if it fails.
fn wait_until_played(page: &Session, name: &str, memory: &mut RendererMemory, at: f64) -> Value {
    let mut video = Value::Null;
    watch(page, name, memory, PAGE_TIMEOUT, |_| {
        video = page.eval(VIDEO).unwrap_or(Value::Null);
        assert!(
            video["error"].is_null(),
            "page {name}'s video failed: {video}"
        );
        number(&video["time"]) >= at
    });
    video
}

#[test]
fn a_film_sized_file_survives_a_reload_and_seeds_a_second_page() {
    if !in_namespace("a_film_sized_file_survives_a_reload_and_seeds_a_second_page") {
        return;
    }
    let artifacts = artifacts();
    let mib: u64 = std::env::var("CHUNKSWARM_FILM_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let media = tempfile::tempdir().unwrap();
    let film = media.path().join("film.webm");
    let sha256 = film_video(&film, mib);
    let mut server = start_server(media.path(), &artifacts);
    let (_chromedriver, webdriver) = start_chromedriver(&artifacts);
    let (_, torrent) = http_get("/torrents/film.webm.torrent").unwrap();
    let layout = Metainfo::from_bytes(&torrent).unwrap().info().layout();
    let length = layout.total_length() as f64;
    let piece = f64::from(layout.piece_length());
    eprintln!("film: {mib} MiB in {} pieces", layout.piece_count());

    let torrent_url = format!("{ORIGIN}/torrents/film.webm.torrent");
    let mut seeder = Running::spawn(
        "the native seeder",
        Command::new(env!("CARGO_BIN_EXE_peer"))
            .arg("seed")
            .arg(&film)
            .args(["--torrent", &torrent_url, "--loopback", "--duration", "900"]),
        &artifacts.join("storage-seeder.log"),
    );
    wait_for("the seeder's announce", Duration::from_secs(120), || {
        seeder.check();
        http_get("/api/search?q=film").is_some_and(|(_, body)| {
            let found: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            found["results"][0]["seeders"].as_u64().unwrap_or(0) >= 1
        })
    });

    let (page_a, profile_a) = browser(&webdriver, "film-a");
    let mut memory_a = RendererMemory::new(profile_a.path());
    let url = format!("{ORIGIN}/?autoplay=film.webm");
    page_a.goto(&url).unwrap();
    let started = Instant::now();
    // It plays from the start, then from far ahead: a seek to 80 %.
    let video = wait_until_played(&page_a, "A", &mut memory_a, 2.0);
    let duration = number(&video["duration"]);
    assert!(duration > 60.0, "page A's video: {video}");
    let target = (duration * 0.8).floor();
    page_a
        .eval(&format!(
            "document.getElementById('video').currentTime = {target}; return null;"
        ))
        .unwrap();
    let sought = Instant::now();
    wait_until_played(&page_a, "A", &mut memory_a, target + 2.0);
    let at_seek = state(&page_a);
    eprintln!(
        "page A: played 2 s of {duration:.0} s in {:.1?}, then from {target} s {:.1?} after the seek, with {} of {length} bytes verified",
        started.elapsed() - sought.elapsed(),
        sought.elapsed(),
        at_seek["stats"]["verifiedBytes"]
    );
    assert!(
        at_seek["done"] != true,
        "page A finished before the seek could show anything: {at_seek}"
    );
    let before = watch(&page_a, "A", &mut memory_a, PAGE_TIMEOUT, |s| {
        s["storage"]["store"] == "opfs" && number(&s["stats"]["verifiedBytes"]) >= length / 2.0
    });
    let verified_before = number(&before["stats"]["verifiedBytes"]);
    eprintln!(
        "page A: reloading at {verified_before} of {length} bytes, after {:.1?}",
        started.elapsed()
    );
    page_a.refresh().unwrap();
    let resumed = watch(&page_a, "A", &mut memory_a, PAGE_TIMEOUT, |s| {
        s["storage"]["store"].is_string() && s["statsAtStart"].is_object()
    });
    assert_eq!(
        resumed["storage"]["store"], "opfs",
        "after the reload: {}",
        resumed["storage"]
    );
    let resumed_bytes = number(&resumed["storage"]["resumedBytes"]);
    eprintln!("page A: {resumed_bytes} bytes found stored after the reload");
    // The reloaded page plays again, from what it stored. Then it stops
    // streaming: a streaming viewer fetches only a window ahead of the
    // playhead, so the rest would take as long as the film.
    wait_until_played(&page_a, "A", &mut memory_a, 2.0);
    stop_streaming(&page_a);
    // What was verified before the reload is still there (the last poll
    // came moments before it, so every write it counted had long finished).
    assert!(
        resumed_bytes >= verified_before,
        "page A resumed {resumed_bytes} bytes, but had {verified_before} verified before the reload"
    );
    let done = watch(&page_a, "A", &mut memory_a, PAGE_TIMEOUT, |s| {
        s["done"] == true && s["sha256"].is_string()
    });
    let elapsed = started.elapsed();
    save_log(&page_a, &artifacts.join("storage-page-A.log"));
    assert_eq!(
        done["sha256"].as_str(),
        Some(sha256.as_str()),
        "page A's file"
    );
    let stats = &done["stats"];
    let fetched = number(&stats["p2pBytes"])
        + number(&stats["httpBytesReceived"])
        + number(&stats["wastedBytes"]);
    let missing = length - resumed_bytes;
    // One piece per source that may have been mid-transfer: each peer and
    // the web seed's requests.
    let sources = number(&stats["peers"]).max(1.0) + 4.0;
    eprintln!(
        "page A: done in {elapsed:.1?}; after the reload fetched {fetched} bytes for {missing} missing; \
         p2p {} http {}; renderer peak {:.0} MiB",
        stats["p2pBytes"],
        stats["httpBytes"],
        memory_a.peak_mib()
    );
    assert!(
        fetched <= missing + sources * piece,
        "page A fetched {fetched} bytes after the reload, but only {missing} were missing"
    );
    assert!(
        number(&stats["p2pBytes"]) + number(&before["stats"]["p2pBytes"]) > 0.0,
        "page A got nothing from the native seeder"
    );

    // Page B: the seeder gone and no web seed, so every byte comes from A.
    drop(seeder);
    let (page_b, profile_b) = browser(&webdriver, "film-b");
    let mut memory_b = RendererMemory::new(profile_b.path());
    page_b
        .goto(&format!("{ORIGIN}/?autoplay=film.webm&webseed=off"))
        .unwrap();
    let started = Instant::now();
    watch(&page_b, "B", &mut memory_b, PAGE_TIMEOUT, |s| {
        s["streaming"] == true
    });
    stop_streaming(&page_b);
    let b = watch(&page_b, "B", &mut memory_b, PAGE_TIMEOUT, |s| {
        memory_a.sample();
        s["done"] == true && s["sha256"].is_string()
    });
    save_log(&page_b, &artifacts.join("storage-page-B.log"));
    eprintln!(
        "page B: done in {:.1?}: {}; renderer peak {:.0} MiB",
        started.elapsed(),
        b["stats"],
        memory_b.peak_mib()
    );
    assert_eq!(b["sha256"].as_str(), Some(sha256.as_str()), "page B's file");
    assert_eq!(
        number(&b["stats"]["p2pBytes"]),
        length,
        "page B's bytes from peers"
    );
    assert_eq!(number(&b["stats"]["httpBytes"]), 0.0);
    memory_a.sample();
    let half_file = length / 2.0 / f64::from(1 << 20);
    for (page, memory) in [("A", &memory_a), ("B", &memory_b)] {
        eprintln!(
            "page {page}: renderer peak {:.0} MiB (own memory {:.0} MiB) for a {mib} MiB file",
            memory.peak_mib(),
            memory.peak_own_mib()
        );
        assert!(
            memory.peak_mib() < half_file,
            "page {page}'s renderer peaked at {:.0} MiB, as if it held the file",
            memory.peak_mib()
        );
        assert!(
            memory.peak_own_mib() <= OWN_MEMORY_LIMIT_MIB,
            "page {page}'s renderer's own memory peaked at {:.0} MiB",
            memory.peak_own_mib()
        );
    }
    server.check();
    drop((page_a, page_b));
    drop((profile_a, profile_b));
}

#[test]
fn a_quota_below_the_file_pauses_the_torrent() {
    if !in_namespace("a_quota_below_the_file_pauses_the_torrent") {
        return;
    }
    let artifacts = artifacts();
    let media = tempfile::tempdir().unwrap();
    let film = media.path().join("film.webm");
    let sha256 = random_file(&film, 48);
    let mut server = start_server(media.path(), &artifacts);
    let (_chromedriver, webdriver) = start_chromedriver(&artifacts);
    let (page, profile) = browser(&webdriver, "quota");
    let mut memory = RendererMemory::new(profile.path());
    let quota = |bytes: u64| {
        page.cdp(
            "Storage.overrideQuotaForOrigin",
            json!({ "origin": ORIGIN, "quotaSize": bytes }),
        )
        .unwrap();
    };
    quota(16 << 20);
    page.goto(&format!("{ORIGIN}/?autoplay=film.webm")).unwrap();
    let full = watch(&page, "quota", &mut memory, STEP_TIMEOUT, |s| {
        s["storage"].is_object()
    });
    assert_eq!(full["storage"]["store"], "opfs", "{}", full["storage"]);
    assert_eq!(full["storage"]["state"], "full", "{}", full["storage"]);
    // Paused: nothing is fetched while the file cannot be stored.
    std::thread::sleep(Duration::from_secs(3));
    let paused = state(&page);
    assert_eq!(number(&paused["stats"]["verifiedBytes"]), 0.0, "{paused}");
    assert_eq!(
        number(&paused["stats"]["httpBytesReceived"]),
        0.0,
        "{paused}"
    );
    assert!(paused["error"].is_null(), "{paused}");

    // Resuming while the quota is still too small is refused, still paused.
    let refused = page
        .eval_async("await window.chunkswarmResume(); return 'resumed';")
        .unwrap();
    assert!(
        refused["error"].is_string(),
        "resume with a full quota: {refused}"
    );

    quota(1 << 30);
    let resumed = page
        .eval_async("await window.chunkswarmResume(); return 'resumed';")
        .unwrap();
    assert_eq!(resumed, "resumed");
    let done = watch(&page, "quota", &mut memory, STEP_TIMEOUT, |s| {
        s["done"] == true && s["sha256"].is_string()
    });
    assert_eq!(done["sha256"].as_str(), Some(sha256.as_str()));
    assert_eq!(done["storage"]["state"], "ready", "{}", done["storage"]);
    save_log(&page, &artifacts.join("storage-page-quota.log"));
    server.check();
    drop(page);
    drop(profile);
}
