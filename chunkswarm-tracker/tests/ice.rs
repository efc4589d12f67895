//! ICE servers issued by the tracker: the announce reply's `x_cs_ice` and
//! `GET /api/ice` carry TURN credentials made from the shared secret, and
//! neither the secret nor a credential reaches a log line (at every level),
//! the metrics, or any other `/api` answer.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chunkswarm_tracker::{Config, IceConfig, Tracker, TrackerError, TurnSecret};
use common::{TestTracker, announce, id};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha1::Sha1;

const SECRET: &str = "s3cret-shared-with-coturn-0x5f3759df";

/// Every log line, at every level, from every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn ice_config() -> Config {
    Config {
        ice: Some(IceConfig {
            urls: vec![
                "stun:127.0.0.1:3478".into(),
                "turn:127.0.0.1:3478?transport=udp".into(),
            ],
            turn_secret: Some(TurnSecret::new(SECRET).unwrap()),
            ttl: Duration::from_secs(600),
        }),
        ..Config::default()
    }
}

/// The TURN REST API credential, computed here apart from the tracker.
fn expected_credential(username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a grant and returns its TURN username and credential.
fn check_grant(grant: &Value, peer: Option<&str>) -> (String, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires = grant["expires"].as_u64().unwrap();
    assert!((now + 590..=now + 610).contains(&expires), "{grant}");
    assert_eq!(grant["ttl"], 600);
    let servers = grant["iceServers"].as_array().unwrap();
    assert_eq!(servers[0]["urls"][0], "stun:127.0.0.1:3478");
    let turn = &servers[1];
    assert_eq!(turn["urls"][0], "turn:127.0.0.1:3478?transport=udp");
    let username = turn["username"].as_str().unwrap().to_owned();
    let (at, name) = username.split_once(':').unwrap();
    assert_eq!(at.parse::<u64>().unwrap(), expires);
    if let Some(peer) = peer {
        assert_eq!(name, peer);
    }
    let credential = turn["credential"].as_str().unwrap().to_owned();
    assert_eq!(credential, expected_credential(&username));
    (username, credential)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_issued_and_never_logged_nor_shown_elsewhere() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let config = ice_config();
    tracing::info!(?config, "the configuration, as a careless caller logs it");
    let t = TestTracker::start(config).await;
    let ih = id(0x42);
    let mut secrets = vec![SECRET.to_owned()];

    // Two peers announce and meet (an offer relayed, an answer back): every
    // announce reply carries a grant for its peer.
    let mut a = t.client().await;
    a.send(&announce(&ih, &id(1), &[])).await;
    let reply = a.recv().await;
    let (username, credential) = check_grant(&reply["x_cs_ice"], Some(&"01".repeat(20)));
    secrets.extend([username, credential]);
    let mut b = t.client().await;
    b.send(&announce(&ih, &id(2), &[(id(9), "v=0 offer")]))
        .await;
    let reply = b.recv().await;
    let (u, c) = check_grant(&reply["x_cs_ice"], Some(&"02".repeat(20)));
    secrets.extend([u, c]);
    let offer = a.recv().await;
    assert_eq!(offer["offer"]["sdp"], "v=0 offer");
    assert!(
        offer.get("x_cs_ice").is_none(),
        "offers carry no grant: {offer}"
    );
    // A `stopped` announce gets none.
    let mut stopped = announce(&ih, &id(1), &[]);
    stopped["event"] = "stopped".into();
    a.send(&stopped).await;
    let reply = a.recv().await;
    assert!(reply.get("x_cs_ice").is_none(), "{reply}");

    // GET /api/ice: a grant with CORS, never cached; a named peer; a bad name.
    let response = t.get("/api/ice").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let grant: Value = serde_json::from_slice(&response.body).unwrap();
    let (u, c) = check_grant(&grant, None);
    secrets.extend([u, c]);
    let grant = t.json("/api/ice?peer=page-7").await;
    let (u, c) = check_grant(&grant, Some("page-7"));
    secrets.extend([u, c]);
    for bad in [
        "/api/ice?peer=a:b",
        "/api/ice?peer=",
        &format!("/api/ice?peer={}", "x".repeat(65)),
    ] {
        assert_eq!(t.get(bad).await.status, 400, "{bad}");
    }

    // Everything else the tracker shows.
    let hex = "42".repeat(20);
    let mut shown = String::new();
    for path in [
        "/metrics".to_owned(),
        "/healthz".to_owned(),
        "/api/swarms".to_owned(),
        format!("/api/swarms/{hex}/pieces"),
        "/api/search?q=".to_owned(),
        "/nothing-here".to_owned(),
    ] {
        let response = t.get(&path).await;
        shown.push_str(&format!(
            "{path}: {:?} {}\n",
            response.headers,
            response.text()
        ));
    }
    drop((a, b));
    t.stop().await;
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "logs were captured:\n{logs}"
    );
    assert!(
        logs.contains("TurnSecret(..)"),
        "the config was logged:\n{logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret:?} in the logs:\n{logs}"
        );
        assert!(
            !shown.contains(secret.as_str()),
            "{secret:?} shown:\n{shown}"
        );
    }
}

#[tokio::test]
async fn without_ice_servers_nothing_is_issued() {
    let t = TestTracker::start(Config::default()).await;
    assert_eq!(t.get("/api/ice").await.status, 404);
    let mut a = t.client().await;
    a.send(&announce(&id(0x43), &id(1), &[])).await;
    let reply = a.recv().await;
    assert!(reply.get("x_cs_ice").is_none(), "{reply}");
}

#[test]
fn a_turn_url_without_a_secret_is_refused() {
    let config = Config {
        ice: Some(IceConfig {
            urls: vec!["turn:127.0.0.1:3478".into()],
            ..IceConfig::default()
        }),
        ..Config::default()
    };
    let error = Tracker::new(config).unwrap_err();
    assert!(matches!(error, TrackerError::Ice(_)), "{error}");
    assert!(
        error.to_string().contains("without a TURN secret"),
        "{error}"
    );
}

#[tokio::test]
async fn api_ice_is_rate_limited_per_address() {
    let mut config = ice_config();
    config.limits.ip_requests_per_second = 1;
    config.limits.ip_burst = 3;
    let t = TestTracker::start(config).await;
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(t.get("/api/ice").await.status);
        }
        statuses
    };
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
}
