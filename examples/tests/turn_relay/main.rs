//! Peers that can meet only through a TURN relay, with credentials the
//! tracker issues, through a real coturn.
//!
//! Each test re-runs itself inside a network namespace it makes
//! (`unshare --net`, then `ip link set lo up`), so nothing leaves the
//! machine, and starts there its own `turnserver` (Debian's coturn) with
//! `use-auth-secret` and the tracker's secret on a free loopback port, and the
//! tracker in this process with `Config::ice` naming that server:
//!
//! - the tracker's credentials (`GET /api/ice`) open an allocation on coturn
//!   (coturn's own `turnutils_uclient` tries them), while expired and forged
//!   ones are refused;
//! - two native `peer` processes forced to relay (`--relay-only`, ICE
//!   transport policy `relay`) exchange a file through coturn with the
//!   credentials from the tracker's announce replies;
//! - when coturn refuses the tracker's credentials (a secret that does not
//!   match), the peers report their failed connections and announce again;
//! - a headless Chromium page forced to relay (`iceTransportPolicy:
//!   'relay'`) downloads pieces from a native seeder through coturn.
//!
//! Needs `turnserver` and `turnutils_uclient` (Debian's coturn), `unshare`
//! and `ip`, root or unprivileged user namespaces, and for the browser test
//! Chromium and chromedriver (`.ci/install` installs them all).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod coturn;
#[path = "../browser/harness.rs"]
mod harness;
#[path = "../browser/webdriver.rs"]
mod webdriver;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chunkswarm_tracker::{Config, IceConfig, Tracker, TurnSecret, serve};
use coturn::Coturn;
use serde_json::Value;
use sha1::Sha1;

const SECRET: &str = "turn-test-secret-5b1f07";

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether this is the run inside the namespace; outside, re-runs
/// `test_name` under `unshare --net` and asserts it passed.
fn in_network_namespace(test_name: &str) -> bool {
    if harness::netns::inside() {
        return true;
    }
    let missing: Vec<&str> = [
        ("turnserver", "--help"),
        ("turnutils_uclient", "-h"),
        ("unshare", "--version"),
        ("ip", "-V"),
    ]
    .into_iter()
    .filter(|(p, arg)| !have(p, arg))
    .map(|(p, _)| p)
    .collect();
    assert!(
        missing.is_empty(),
        "the TURN tests need {missing:?}: install Debian's coturn, util-linux and iproute2 \
         (`bash .ci/install` does)"
    );
    // One namespace at a time: the relayed transfers and Chromium share
    // few cores, and their timeouts assume they have them.
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let status = harness::netns::rerun(
        &["--exact", test_name, "--nocapture", "--test-threads=1"],
        &[],
    );
    assert!(
        status.success(),
        "the test inside the network namespace failed ({status}); see its output above"
    );
    false
}

/// The tracker, in this process, on a free loopback port.
struct TrackerRun {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TrackerRun {
    /// Credentials last 600 s; announce replies renew them every
    /// `announce_interval`.
    fn start(turn_url: &str, secret: &str, announce_interval: Duration) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = Config {
            announce_interval,
            ice: Some(IceConfig {
                urls: vec![turn_url.to_owned()],
                turn_secret: Some(TurnSecret::new(secret).unwrap()),
                ttl: Duration::from_secs(600),
            }),
            ..Config::default()
        };
        let tracker = Tracker::new(config).unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(serve(listener, tracker, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            _runtime: runtime,
            _stop: stop,
        }
    }

    fn announce_url(&self) -> String {
        format!("ws://{}/announce", self.addr)
    }
}

/// The TURN REST API credential, computed here apart from the tracker.
fn credential(secret: &str, username: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn peer(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peer"));
    command
        .args(args)
        .args(["--no-web-seed", "--loopback", "--relay-only", "-vv"])
        .env("RUST_LOG", "info,chunkswarm_core=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// `peer seed FILE` forced to relay; its torrent is written to FILE.torrent.
fn seeder(file: &Path, tracker: &TrackerRun, log: &Path) -> harness::Running {
    let file = file.to_str().unwrap();
    let tracker = tracker.announce_url();
    let mut command = peer(&["seed", file, "--tracker", &tracker, "--duration", "300"]);
    harness::Running::spawn("the seeder", &mut command, log)
}

/// `peer fetch` forced to relay; its JSON summary.
fn fetch(torrent: &Path, out: &Path, tracker: &TrackerRun, timeout_s: u32, log: &Path) -> Value {
    let output = peer(&[
        "fetch",
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--tracker",
        &tracker.announce_url(),
        "--timeout",
        &timeout_s.to_string(),
        "--json",
    ])
    .stderr(std::fs::File::create(log).unwrap())
    .output()
    .expect("cannot run peer fetch");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "peer fetch printed no summary ({e}, {}); log: {}",
            output.status,
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

/// Waits for `path` to exist (the seeder writes its torrent).
fn wait_file(path: &Path, seeder: &mut harness::Running) {
    harness::wait_for("the seeder's torrent", Duration::from_secs(30), || {
        seeder.check();
        path.is_file()
    });
}

/// The distinct TURN users coturn granted an allocation to.
fn allocated_users(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter(|l| l.contains("ALLOCATE processed, success"))
        .filter_map(|l| Some(l.split("user <").nth(1)?.split('>').next()?.to_owned()))
        .collect()
}

fn artifacts(test: &str) -> PathBuf {
    let dir = harness::artifacts().join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CREDENTIALS_TEST: &str =
    "coturn_takes_the_trackers_credentials_and_refuses_expired_or_forged_ones";

#[test]
fn coturn_takes_the_trackers_credentials_and_refuses_expired_or_forged_ones() {
    if !in_network_namespace(CREDENTIALS_TEST) {
        return;
    }
    let artifacts = artifacts("turn-credentials");
    let coturn = Coturn::start(SECRET, &artifacts.join("turnserver.log"));
    let tracker = TrackerRun::start(&coturn.url(), SECRET, Duration::from_secs(120));

    // The tracker's grant, as a page gets it.
    let (status, body) =
        harness::http_get(&tracker.addr.to_string(), "/api/ice?peer=test").expect("GET /api/ice");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let grant: Value = serde_json::from_slice(&body).unwrap();
    let turn = &grant["iceServers"][0];
    assert_eq!(turn["urls"][0].as_str(), Some(coturn.url().as_str()));
    let username = turn["username"].as_str().unwrap();
    let issued = turn["credential"].as_str().unwrap();
    assert!(
        coturn.allocates(username, issued),
        "coturn refused the tracker's credentials:\n{}",
        coturn.log()
    );

    // Expired: made with the right secret, but its time is past.
    let expired = format!("{}:expired", unix_now() - 60);
    assert!(
        !coturn.allocates(&expired, &credential(SECRET, &expired)),
        "coturn accepted an expired credential"
    );
    // Forged: another secret; and a real credential under a later expiry.
    let forged = format!("{}:forged", unix_now() + 600);
    assert!(
        !coturn.allocates(&forged, &credential("not-the-secret", &forged)),
        "coturn accepted a credential made with another secret"
    );
    let stretched = format!("{}:test", unix_now() + 86_400);
    assert!(
        !coturn.allocates(&stretched, issued),
        "coturn accepted a credential under another expiry"
    );
    let log = coturn.log();
    assert!(
        log.contains(&format!("Cannot find credentials of user <{expired}>")),
        "coturn's log does not show the expired user refused:\n{log}"
    );
    let users = allocated_users(&log);
    assert!(users.contains(username), "allocations: {users:?}");
    assert!(
        !users.contains(&expired) && !users.contains(&forged) && !users.contains(&stretched),
        "allocations: {users:?}"
    );
}

const RELAY_TEST: &str = "two_native_peers_forced_to_relay_exchange_a_file_through_coturn";

#[test]
fn two_native_peers_forced_to_relay_exchange_a_file_through_coturn() {
    if !in_network_namespace(RELAY_TEST) {
        return;
    }
    let artifacts = artifacts("turn-native");
    let coturn = Coturn::start(SECRET, &artifacts.join("turnserver.log"));
    // Announces every 5 s: each reply brings the peers a fresh credential
    // while their relayed connection goes on with the one it started with.
    let tracker = TrackerRun::start(&coturn.url(), SECRET, Duration::from_secs(5));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relayed.bin");
    let sha256 = harness::random_file(&file, 3);

    let mut seeder = seeder(&file, &tracker, &artifacts.join("seeder.log"));
    let torrent = dir.path().join("relayed.bin.torrent");
    wait_file(&torrent, &mut seeder);
    let out = dir.path().join("fetched.bin");
    let started = std::time::Instant::now();
    let summary = fetch(&torrent, &out, &tracker, 90, &artifacts.join("fetcher.log"));
    eprintln!(
        "fetch through the relay: {:?}: {summary}",
        started.elapsed()
    );
    seeder.check();

    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["bytes_p2p"], 3 << 20, "{summary}");
    assert_eq!(summary["failed_connections"], 0, "{summary}");
    // Every announce reply (every 5 s) brought fresh credentials; the
    // connection went on with those it was made with, without a failure.
    let seeder_log = std::fs::read_to_string(artifacts.join("seeder.log")).unwrap();
    let announces = seeder_log.matches("announcing info_hash").count();
    eprintln!("the seeder announced {announces} times");
    assert_eq!(summary["bytes_http"], 0, "{summary}");
    let got = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(&out).unwrap()))
    };
    assert_eq!(got, sha256, "the fetched file differs");
    // Both peers allocated on coturn, each under its own credential from the
    // tracker (`EXPIRY:hex of its peer id`).
    let log = coturn.log();
    let users: BTreeSet<String> = allocated_users(&log)
        .into_iter()
        .filter(|u| u.split_once(':').is_some_and(|(_, peer)| peer.len() == 40))
        .collect();
    assert!(users.len() >= 2, "coturn allocated for {users:?}");
    assert!(
        log.contains("CHANNEL_BIND processed, success")
            || log.contains("CREATE_PERMISSION processed, success"),
        "coturn relayed nothing between the peers"
    );
}

const REFUSED_TEST: &str = "peers_refused_by_the_relay_report_the_failure_and_try_again";

#[test]
fn peers_refused_by_the_relay_report_the_failure_and_try_again() {
    if !in_network_namespace(REFUSED_TEST) {
        return;
    }
    let artifacts = artifacts("turn-refused");
    // The tracker's secret is not coturn's: every allocation is refused, so
    // relay-only peers gather no candidate and cannot connect.
    let coturn = Coturn::start(SECRET, &artifacts.join("turnserver.log"));
    let tracker = TrackerRun::start(&coturn.url(), "a-stale-secret", Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unreachable.bin");
    harness::random_file(&file, 1);
    let mut seeder = seeder(&file, &tracker, &artifacts.join("seeder.log"));
    let torrent = dir.path().join("unreachable.bin.torrent");
    wait_file(&torrent, &mut seeder);
    let out = dir.path().join("never.bin");
    let log = artifacts.join("fetcher.log");
    let summary = fetch(&torrent, &out, &tracker, 55, &log);
    eprintln!("fetch without a usable relay: {summary}");
    assert_eq!(summary["complete"], false, "{summary}");
    assert_eq!(summary["bytes_p2p"], 0, "{summary}");
    let failed = summary["failed_connections"].as_u64().unwrap_or(0);
    assert!(failed >= 1, "no failed connection reported: {summary}");
    let text = std::fs::read_to_string(&log).unwrap();
    let retries = text.matches("connection failed; announcing again").count();
    assert!(retries >= 1, "no retry in the fetcher's log");
    // After each failure the fetcher announced again with fresh offers.
    let announces = text.matches("announcing info_hash").count();
    assert!(announces >= 3, "{announces} announces in 55 s");
    assert!(
        coturn.log().contains("401"),
        "coturn did not refuse the credentials"
    );
    assert!(allocated_users(&coturn.log()).is_empty());
}

const BROWSER_TEST: &str = "a_page_forced_to_relay_gets_pieces_from_a_native_seeder_through_coturn";
/// The demo server inside the namespace.
const SERVER: &str = "127.0.0.1:8080";

#[test]
fn a_page_forced_to_relay_gets_pieces_from_a_native_seeder_through_coturn() {
    let serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !harness::in_namespace(BROWSER_TEST) {
        return;
    }
    drop(serial);
    let artifacts = artifacts("turn-browser");
    let coturn = Coturn::start(SECRET, &artifacts.join("turnserver.log"));
    // The demo server hands out the relay with credentials from the secret.
    let mut server = harness::Running::spawn(
        "the server",
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", SERVER, "--pkg", &harness::pkg_dir()])
            .args(["--turn-url", &coturn.url(), "--origin-rate", "0"])
            .env("CHUNKSWARM_TURN_SECRET", SECRET)
            .env("NO_COLOR", "1"),
        &artifacts.join("server.log"),
    );
    let (_chromedriver, webdriver) = harness::start_chromedriver(&artifacts);
    harness::wait_for("the server", Duration::from_secs(30), || {
        server.check();
        harness::http_get(SERVER, "/healthz").is_some_and(|(status, _)| status == 200)
    });

    // A native seeder of the sample, forced to relay too.
    let sample = chunkswarm_examples::demo::sample_media_dir().join("sample.webm");
    let torrent_url = format!("http://{SERVER}/torrents/sample.webm.torrent");
    let mut command = peer(&[
        "seed",
        sample.to_str().unwrap(),
        "--torrent",
        &torrent_url,
        "--tracker",
        &format!("ws://{SERVER}/announce"),
        "--duration",
        "300",
    ]);
    let mut seeder =
        harness::Running::spawn("the seeder", &mut command, &artifacts.join("seeder.log"));
    harness::wait_for("the seeder's announce", Duration::from_secs(30), || {
        seeder.check();
        harness::http_get(SERVER, "/api/search?q=sample").is_some_and(|(_, body)| {
            let found: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            found["results"][0]["seeders"].as_u64().unwrap_or(0) >= 1
        })
    });

    // The page: relay only, no web seed, so every byte comes from the
    // seeder through coturn.
    let (page, profile) = harness::browser(&webdriver, "relay");
    page.goto(&format!(
        "http://{SERVER}/?autoplay=sample.webm&webseed=off&relay=1&storage=memory"
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let state = loop {
        let state = page.eval(harness::DEMO_STATE).unwrap_or(Value::Null);
        if state["done"] == true && state["sha256"].is_string() {
            break state;
        }
        if state["error"].is_string() || started.elapsed() > Duration::from_secs(120) {
            harness::save_log(&page, &artifacts.join("page.log"));
            let _ = page.screenshot(&artifacts.join("failed.png"));
            panic!(
                "the page did not finish: {state}\nturnserver allocations: {:?}",
                allocated_users(&coturn.log())
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    harness::save_log(&page, &artifacts.join("page.log"));
    eprintln!(
        "page done through the relay in {:?}: {}",
        started.elapsed(),
        state["stats"]
    );
    let sample_bytes = std::fs::read(&sample).unwrap();
    let sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&sample_bytes))
    };
    assert_eq!(state["sha256"].as_str(), Some(sha256.as_str()));
    assert_eq!(
        state["stats"]["p2pBytes"].as_f64(),
        Some(sample_bytes.len() as f64),
        "{}",
        state["stats"]
    );
    // The page and the seeder each allocated under a credential of theirs.
    let users: BTreeSet<String> = allocated_users(&coturn.log())
        .into_iter()
        .filter(|u| u.split_once(':').is_some_and(|(_, peer)| peer.len() == 40))
        .collect();
    assert!(users.len() >= 2, "coturn allocated for {users:?}");
    seeder.check();
    server.check();
    drop(page);
    drop(profile);
}
