//! What cluster mode costs: a `redis-server` and two `chunkswarm-tracker`
//! nodes joined through it (`--redis`), plus a lone tracker for comparison,
//! all on loopback.
//!
//! 1. Latency: a peer announces with one offer and a peer of the same swarm
//!    receives it, then answers and the offerer receives the answer; p50 and
//!    p99 of each leg, with the two peers on different nodes (relayed through
//!    Redis pub/sub), on the same node of the cluster, and on the lone
//!    tracker.
//! 2. Load: N clients, half on each node, in 10 swarms; each keeps one
//!    announce with 2 offers in flight and answers every offer it gets. The
//!    messages each node sends its clients per second (announce replies,
//!    offers, answers: its "responses").
//!
//! ```sh
//! cargo build --release -p chunkswarm-tracker -p chunkswarm-benches --features chunkswarm-tracker/cli
//! target/release/cluster_relay [--rounds 2000] [--clients 200] [--seconds 5] [--tracker PATH]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    rounds: usize,
    clients: usize,
    seconds: u64,
    tracker: PathBuf,
}

fn parse_args() -> Args {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut args = Args {
        rounds: 2000,
        clients: 200,
        seconds: 5,
        tracker: exe_dir.unwrap_or_default().join("chunkswarm-tracker"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rounds" => args.rounds = value().parse::<usize>().unwrap().max(1),
            "--clients" => args.clients = value().parse::<usize>().unwrap().max(2),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--tracker" => args.tracker = PathBuf::from(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn redis_server() -> (Process, String) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server not found (Debian package redis-server)");
    wait_for(([127, 0, 0, 1], port).into());
    (Process(child), format!("redis://127.0.0.1:{port}/"))
}

fn tracker(path: &Path, redis: Option<&str>) -> (Process, SocketAddr) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut command = Command::new(path);
    command
        .args(["--listen", &addr.to_string(), "--threads", "1"])
        .args(["--ip-rate", "0", "--max-connections-per-ip", "100000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(url) = redis {
        command.args(["--redis", url]);
    }
    let child = command.spawn().expect("cannot start the tracker");
    wait_for(addr);
    (Process(child), addr)
}

type Ws = WebSocketStream<TcpStream>;

async fn connect(addr: SocketAddr) -> Ws {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let url = format!("ws://{addr}/announce");
    tokio_tungstenite::client_async(url, tcp).await.unwrap().0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

fn bin(prefix: u8, n: u64) -> String {
    let mut bytes = [prefix; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn sdp(n: u64) -> String {
    format!(
        "v=0\r\no=- {n} 2 IN IP4 127.0.0.1\r\n{}",
        "a=candidate:x\r\n".repeat(32)
    )
}

fn announce(info_hash: &str, peer_id: &str, offers: &[(String, String)]) -> String {
    let offers: Vec<Value> = offers
        .iter()
        .map(|(id, sdp)| json!({"offer_id": id, "offer": {"type": "offer", "sdp": sdp}}))
        .collect();
    json!({"action": "announce", "info_hash": info_hash, "peer_id": peer_id,
        "numwant": offers.len(), "uploaded": 0, "downloaded": 0, "left": 1000, "offers": offers})
    .to_string()
}

/// p50 and p99 in microseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    (at(0.5), at(0.99))
}

/// Offer and answer latencies between a peer on `a` and one on `b`.
async fn relay_latency(a: SocketAddr, b: SocketAddr, rounds: usize, tag: u8) -> [(f64, f64); 2] {
    let info_hash = bin(tag, 0);
    let (offerer_id, answerer_id) = (bin(tag, 1), bin(tag, 2));
    let mut answerer = connect(b).await;
    answerer
        .send(Message::text(announce(&info_hash, &answerer_id, &[])))
        .await
        .unwrap();
    next_json(&mut answerer).await;
    let mut offerer = connect(a).await;
    let (mut offers, mut answers) = (Vec::new(), Vec::new());
    for round in 0..rounds as u64 {
        let offer_id = bin(tag ^ 0x80, round);
        let text = announce(&info_hash, &offerer_id, &[(offer_id.clone(), sdp(round))]);
        let sent = Instant::now();
        offerer.send(Message::text(text)).await.unwrap();
        let offer = next_json(&mut answerer).await;
        offers.push(sent.elapsed());
        assert_eq!(offer["offer_id"], offer_id.as_str());
        next_json(&mut offerer).await; // the announce reply
        let reply = json!({"action": "announce", "info_hash": info_hash, "peer_id": answerer_id,
            "to_peer_id": offerer_id, "offer_id": offer_id,
            "answer": {"type": "answer", "sdp": sdp(round)}});
        let sent = Instant::now();
        answerer
            .send(Message::text(reply.to_string()))
            .await
            .unwrap();
        let answer = next_json(&mut offerer).await;
        answers.push(sent.elapsed());
        assert_eq!(answer["offer_id"], offer_id.as_str());
    }
    [percentiles(offers), percentiles(answers)]
}

/// One load client: one announce with 2 offers in flight, every offer answered.
async fn load_client(
    addr: SocketAddr,
    index: u64,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut ws = connect(addr).await;
    let info_hash = bin(0xa0, index % 10);
    let peer_id = bin(0xb0, index);
    let mut sequence = 0u64;
    let next_announce = |sequence: &mut u64| {
        *sequence += 2;
        let offers = [
            (bin(0xc0, index << 32 | *sequence), sdp(index)),
            (bin(0xc0, index << 32 | (*sequence + 1)), sdp(index)),
        ];
        announce(&info_hash, &peer_id, &offers)
    };
    if ws
        .send(Message::text(next_announce(&mut sequence)))
        .await
        .is_err()
    {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        received.fetch_add(1, Ordering::Relaxed);
        if stop.load(Ordering::Relaxed) {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let reply = if value.get("interval").is_some() {
            next_announce(&mut sequence)
        } else if value.get("offer").is_some() {
            json!({"action": "announce", "info_hash": info_hash, "peer_id": peer_id,
                "to_peer_id": value["peer_id"], "offer_id": value["offer_id"],
                "answer": {"type": "answer", "sdp": sdp(index)}})
            .to_string()
        } else {
            continue;
        };
        if ws.send(Message::text(reply)).await.is_err() {
            return;
        }
    }
}

fn print_latency(what: &str, [(o50, o99), (a50, a99)]: [(f64, f64); 2]) {
    println!(
        "  {what:<28} offer p50 {o50:>6.0} µs  p99 {o99:>6.0} µs   answer p50 {a50:>6.0} µs  p99 {a99:>6.0} µs"
    );
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    if !args.tracker.exists() {
        eprintln!(
            "no tracker binary at {}; build it with `cargo build --release -p chunkswarm-tracker --features cli` or pass --tracker",
            args.tracker.display()
        );
        std::process::exit(2);
    }
    let (_redis, url) = redis_server();
    let (_node_a, a) = tracker(&args.tracker, Some(&url));
    let (_node_b, b) = tracker(&args.tracker, Some(&url));
    let (_lone, lone) = tracker(&args.tracker, None);
    // Let both nodes join before the first announce.
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!("relay latency over {} rounds (loopback):", args.rounds);
    print_latency(
        "across nodes (via Redis)",
        relay_latency(a, b, args.rounds, 0x10).await,
    );
    print_latency(
        "one node of the cluster",
        relay_latency(a, a, args.rounds, 0x20).await,
    );
    print_latency(
        "lone tracker",
        relay_latency(lone, lone, args.rounds, 0x30).await,
    );

    let stop = Arc::new(AtomicBool::new(false));
    let counters = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    for index in 0..args.clients as u64 {
        let side = (index % 2) as usize;
        let addr = [a, b][side];
        tokio::spawn(load_client(
            addr,
            index,
            counters[side].clone(),
            stop.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let before = counters.each_ref().map(|c| c.load(Ordering::Relaxed));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let after = counters.each_ref().map(|c| c.load(Ordering::Relaxed));
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    println!(
        "load: {} clients, half on each node, 10 swarms, 2 offers per announce:",
        args.clients
    );
    for (i, name) in ["node A", "node B"].iter().enumerate() {
        println!(
            "  {name} responses/s : {:>8.0}",
            (after[i] - before[i]) as f64 / secs
        );
    }
}
