//! `wss://` and `https://` with a self-signed certificate, over loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chunkswarm_tracker::{Config, Limits, TlsFiles, Tracker};
use common::{Client, TestTracker, announce, answer, http_over, id};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

struct Tls {
    _dir: tempfile::TempDir,
    files: TlsFiles,
    connector: TlsConnector,
}

fn tls() -> Tls {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, certified.cert.pem()).unwrap();
    std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(certified.cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Tls {
        _dir: dir,
        files,
        connector: TlsConnector::from(Arc::new(config)),
    }
}

async fn connect(t: &TestTracker, tls: &Tls) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(t.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tls.connector.connect(name, tcp).await.unwrap()
}

async fn wss_client(t: &TestTracker, tls: &Tls) -> Client<TlsStream<TcpStream>> {
    let stream = connect(t, tls).await;
    let url = format!("wss://localhost:{}/announce", t.addr.port());
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    Client { ws }
}

#[tokio::test]
async fn wss_signaling_and_https_work_and_a_stalled_handshake_blocks_no_one() {
    let tls = tls();
    let config = Config {
        tls: Some(tls.files.clone()),
        limits: Limits {
            ip_requests_per_second: 0,
            tls_handshake_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..Config::default()
    };
    let t = TestTracker::start(config).await;

    // A client that connects and never says hello.
    let _stalled = TcpStream::connect(t.addr).await.unwrap();

    let (ih, alice_id, bob_id, offer_id) = (id(0x11), id(1), id(2), id(0xf1));
    let mut alice = wss_client(&t, &tls).await;
    let mut bob = wss_client(&t, &tls).await;
    bob.send(&announce(&ih, &bob_id, &[])).await;
    bob.recv().await;
    alice
        .send(&announce(&ih, &alice_id, &[(offer_id.clone(), "a")]))
        .await;
    alice.recv().await;
    let offer = bob.recv().await;
    assert_eq!(offer["offer_id"], offer_id);
    bob.send(&answer(&ih, &bob_id, &alice_id, &offer_id, "b"))
        .await;
    assert_eq!(alice.recv().await["answer"]["sdp"], "b");

    let stream = connect(&t, &tls).await;
    let response = http_over(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((response.status, response.text().as_str()), (200, "ok\n"));

    assert!(t.tracker.public_url().starts_with("https://127.0.0.1:"));

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(t.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut plain, b"GET /healthz HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut got);
    let _ = tokio::time::timeout(Duration::from_secs(3), read).await;
    assert!(!got.starts_with(b"HTTP/1.1 200"));
    t.stop().await;
}

/// The TLS handshake runs on the admission thread, not among the
/// connections being served: with the tracker's one worker busy (here
/// blocked outright), a client still completes its handshake at once.
#[test]
fn a_handshake_does_not_wait_for_a_busy_worker() {
    let tls = tls();
    let config = Config {
        tls: Some(tls.files.clone()),
        ..Config::default()
    };
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = server.block_on(TestTracker::start(config));
    // Serving: a first handshake.
    client.block_on(connect(&t, &tls));
    let (busy, blocked) = std::sync::mpsc::channel();
    server.spawn(async move {
        let _ = busy.send(());
        std::thread::sleep(Duration::from_secs(3));
    });
    blocked.recv().unwrap();
    let started = std::time::Instant::now();
    let shaken = client
        .block_on(async { tokio::time::timeout(Duration::from_secs(2), connect(&t, &tls)).await });
    assert!(shaken.is_ok(), "the handshake waited for the busy worker");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(shaken);
    server.block_on(t.stop());
}

#[test]
fn bad_tls_files_are_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem").unwrap();
    let config = |cert: &std::path::Path, key: &std::path::Path| Config {
        tls: Some(TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        ..Config::default()
    };
    let missing = dir.path().join("missing.pem");
    assert!(Tracker::new(config(&missing, &missing)).is_err());
    assert!(Tracker::new(config(&garbage, &garbage)).is_err());
    let tls = tls();
    assert!(Tracker::new(config(&tls.files.cert, &garbage)).is_err());
    assert!(Tracker::new(config(&tls.files.cert, &tls.files.key)).is_ok());
}
