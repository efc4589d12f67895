//! Load benchmark of the chunkswarm tracker's WebSocket signaling.
//!
//! Starts the `chunkswarm-tracker` binary pinned to core 0 (`taskset -c 0`,
//! one worker thread), pins itself to core 1, and runs N WebSocket clients on
//! one thread over loopback: every client keeps one announce in flight, each
//! announce carrying K offers with a ~500-byte SDP; clients answer every offer
//! they are sent. It prints the tracker's messages per second (announce
//! replies, forwarded offers and relayed answers; all of them "responses"),
//! the CPU both sides used, and the tracker's resident memory per idle
//! connection (VmRSS before and after the N clients connect and announce once).
//! It runs over plain `ws://` and over `wss://` (self-signed certificate).
//!
//! ```sh
//! cargo build --release -p chunkswarm-tracker -p chunkswarm-benches --features chunkswarm-tracker/cli
//! target/release/tracker_load [--clients 1000] [--seconds 5] [--offers 2] \
//!     [--swarms 10] [--mode both|plain|tls] [--tracker PATH]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::borrow::Cow;
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    clients: usize,
    seconds: u64,
    offers: usize,
    swarms: usize,
    plain: bool,
    tls: bool,
    tracker: PathBuf,
}

fn parse_args() -> Args {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut args = Args {
        clients: 1000,
        seconds: 5,
        offers: 2,
        swarms: 10,
        plain: true,
        tls: true,
        tracker: exe_dir.unwrap_or_default().join("chunkswarm-tracker"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--clients" => args.clients = value().parse().unwrap(),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--offers" => args.offers = value().parse().unwrap(),
            "--swarms" => args.swarms = value().parse::<usize>().unwrap().max(1),
            "--tracker" => args.tracker = PathBuf::from(value()),
            "--mode" => match value().as_str() {
                "plain" => args.tls = false,
                "tls" => args.plain = false,
                _ => {}
            },
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// Counters of what the clients received and sent.
#[derive(Default)]
struct Counts {
    replies: Cell<u64>,
    offers: Cell<u64>,
    answers: Cell<u64>,
    errors: Cell<u64>,
    sent: Cell<u64>,
}

impl Counts {
    fn received(&self) -> u64 {
        self.replies.get() + self.offers.get() + self.answers.get() + self.errors.get()
    }
    fn snapshot(&self) -> [u64; 5] {
        [
            self.replies.get(),
            self.offers.get(),
            self.answers.get(),
            self.errors.get(),
            self.sent.get(),
        ]
    }
}

fn bin(prefix: u8, n: u64) -> String {
    let mut bytes = [prefix; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[derive(serde::Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    offer_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    peer_id: Option<Cow<'a, str>>,
}

/// What every client shares.
#[derive(Clone)]
struct Shared {
    swarms: usize,
    offers: usize,
    counts: Rc<Counts>,
    ready: Rc<Cell<usize>>,
    go: tokio::sync::watch::Receiver<bool>,
    stop: Rc<Cell<bool>>,
}

/// One client: keeps one announce in flight and answers every offer.
async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    index: u64,
    shared: Shared,
) {
    let Shared {
        swarms,
        offers,
        counts,
        ready,
        go: mut start,
        stop,
    } = shared;
    let info_hash = json_str(&bin(0xa0, index % swarms as u64));
    let peer_id = json_str(&bin(0xb0, index));
    let sdp = json_str(&format!(
        "v=0\r\no=- {index} 2 IN IP4 127.0.0.1\r\n{}",
        "a=candidate:x\r\n".repeat(32)
    ));
    let mut sequence = 0u64;
    let mut announce = |first: bool| {
        let mut text = format!(
            r#"{{"action":"announce","info_hash":{info_hash},"peer_id":{peer_id},"numwant":{offers},"uploaded":0,"downloaded":0,"left":1000,"event":"{}","offers":["#,
            if first { "started" } else { "" }
        );
        for k in 0..offers {
            sequence += 1;
            if k > 0 {
                text.push(',');
            }
            let offer_id = json_str(&bin(0xc0 + (index % 16) as u8, index << 32 | sequence));
            text.push_str(&format!(
                r#"{{"offer_id":{offer_id},"offer":{{"type":"offer","sdp":{sdp}}}}}"#
            ));
        }
        text.push_str("]}");
        text
    };
    // Join once (idle state), then wait for the go.
    ws.send(Message::text(announce(true))).await.unwrap();
    let _ = ws.next().await;
    ready.set(ready.get() + 1);
    if start.wait_for(|&go| go).await.is_err() {
        return;
    }
    if ws.send(Message::text(announce(false))).await.is_err() {
        return;
    }
    counts.sent.set(counts.sent.get() + 1);
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let text = text.as_str();
        if text.contains("\"interval\"") {
            counts.replies.set(counts.replies.get() + 1);
            if stop.get() {
                continue;
            }
            if ws.send(Message::text(announce(false))).await.is_err() {
                return;
            }
            counts.sent.set(counts.sent.get() + 1);
        } else if text.contains("\"offer\"") {
            counts.offers.set(counts.offers.get() + 1);
            let Ok(incoming) = serde_json::from_str::<Incoming<'_>>(text) else {
                continue;
            };
            let (Some(offer_id), Some(from)) = (incoming.offer_id, incoming.peer_id) else {
                continue;
            };
            if stop.get() {
                continue;
            }
            let answer = format!(
                r#"{{"action":"announce","info_hash":{info_hash},"peer_id":{peer_id},"to_peer_id":{},"offer_id":{},"answer":{{"type":"answer","sdp":{sdp}}}}}"#,
                json_str(&from),
                json_str(&offer_id)
            );
            if ws.send(Message::text(answer)).await.is_err() {
                return;
            }
            counts.sent.set(counts.sent.get() + 1);
        } else if text.contains("\"answer\"") {
            counts.answers.set(counts.answers.get() + 1);
        } else {
            counts.errors.set(counts.errors.get() + 1);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
    connector: Option<TlsConnector>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(tracker: &Path, clients: usize, tls: bool) -> Server {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0"])
        .arg(tracker)
        .args([
            "--listen",
            &addr.to_string(),
            "--threads",
            "1",
            "--ip-rate",
            "0",
        ])
        .args(["--max-connections-per-ip", &(clients * 2 + 100).to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let (dir, connector) = if tls {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        command
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key);
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
        (Some(dir), Some(TlsConnector::from(Arc::new(config))))
    } else {
        (None, None)
    };
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", tracker.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "tracker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        addr,
        _dir: dir,
        connector,
    }
}

async fn run_mode(args: &Args, tls: bool) {
    let server = start_server(&args.tracker, args.clients, tls);
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_bytes(pid);

    let counts = Rc::new(Counts::default());
    let (start, go) = tokio::sync::watch::channel(false);
    let stop = Rc::new(Cell::new(false));
    let ready = Rc::new(Cell::new(0usize));
    let shared = Shared {
        swarms: args.swarms,
        offers: args.offers,
        counts: counts.clone(),
        ready: ready.clone(),
        go,
        stop: stop.clone(),
    };
    let mut tasks = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let index = index as u64;
        let task = match &server.connector {
            None => {
                let url = format!("ws://{}/announce", server.addr);
                let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
                tokio::task::spawn_local(client(ws, index, shared.clone()))
            }
            Some(connector) => {
                let stream = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await
                    .unwrap();
                let url = format!("wss://localhost:{}/announce", server.addr.port());
                let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
                tokio::task::spawn_local(client(ws, index, shared.clone()))
            }
        };
        tasks.push(task);
    }
    // Every client has announced once and idles.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready.get() < args.clients {
        assert!(
            Instant::now() < deadline,
            "only {} clients joined",
            ready.get()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle = rss_bytes(pid);
    let per_connection = rss_idle.saturating_sub(rss_before) as f64 / args.clients as f64;

    let _ = start.send(true);
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let (c0, s0, me0, t0) = (
        counts.snapshot(),
        cpu_seconds(&pid.to_string()),
        cpu_seconds("self"),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (c1, s1, me1, elapsed) = (
        counts.snapshot(),
        cpu_seconds(&pid.to_string()),
        cpu_seconds("self"),
        t0.elapsed(),
    );
    stop.set(true);
    let secs = elapsed.as_secs_f64();
    let rate = |i: usize| (c1[i] - c0[i]) as f64 / secs;
    let responses = rate(0) + rate(1) + rate(2) + rate(3);
    println!(
        "{} with {} clients, {} swarms, {} offers per announce:",
        if tls { "wss://" } else { "ws://" },
        args.clients,
        args.swarms,
        args.offers
    );
    println!(
        "  tracker responses/s : {responses:>10.0}  (announce replies {:.0}, offers forwarded {:.0}, answers relayed {:.0}, failures {:.0})",
        rate(0),
        rate(1),
        rate(2),
        rate(3)
    );
    println!("  client messages/s   : {:>10.0}", rate(4));
    println!(
        "  tracker CPU (core 0): {:>9.0}%   clients CPU (core 1): {:.0}%",
        (s1 - s0) / secs * 100.0,
        (me1 - me0) / secs * 100.0
    );
    println!(
        "  tracker RSS         : {:.1} MiB idle, {:.1} MiB with {} announced idle connections = {:.1} KiB per connection",
        rss_before as f64 / 1048576.0,
        rss_idle as f64 / 1048576.0,
        args.clients,
        per_connection / 1024.0
    );
    println!("  received in all     : {}", counts.received());
    drop(server);
    for task in tasks {
        task.abort();
    }
}

fn main() {
    let args = parse_args();
    if !args.tracker.exists() {
        eprintln!(
            "no tracker binary at {}; build it with `cargo build --release -p chunkswarm-tracker --features cli` or pass --tracker",
            args.tracker.display()
        );
        std::process::exit(2);
    }
    // The clients run on core 1, the tracker on core 0.
    let pinned = Command::new("taskset")
        .args(["-a", "-cp", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !pinned {
        eprintln!("warning: could not pin the clients to core 1");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        if args.plain {
            run_mode(&args, false).await;
        }
        if args.tls {
            run_mode(&args, true).await;
        }
    });
}
