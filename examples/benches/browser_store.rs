//! How fast a page downloads into each piece store, and the memory it takes.
//!
//! ```sh
//! cargo bench -p chunkswarm-examples --bench browser_store            # 512 MiB, both stores
//! cargo bench -p chunkswarm-examples --bench browser_store -- --mib 4096 --stores opfs
//! ```
//!
//! The `server` example serves a file of random bytes from a folder on
//! loopback, with no rate cap and no peer; one headless Chromium per store
//! opens the demo page on it (`?storage=opfs` and `?storage=memory`) and
//! downloads it from the web seed. Printed per store: the download rate
//! (bytes over the time from adding the torrent to its last piece verified,
//! as the page measures it), the wall time, and the peak resident memory of
//! the page's renderer processes; then the OPFS / memory rate ratio (goal
//! ≥ 0.8). At each tenth of the download, a breakdown of where the memory
//! is: the largest renderer's resident memory (split into its own pages,
//! mapped files, Chromium's code mostly, and shared memory), the page's JS
//! heap and the engine's wasm linear memory. Runs in a network namespace of
//! its own, like the browser tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/browser/harness.rs"]
mod harness;
#[path = "../tests/browser/webdriver.rs"]
mod webdriver;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{
    DEMO_STATE, RendererMemory, Running, artifacts, browser, pkg_dir, random_file,
    run_in_namespace, start_chromedriver, wait_for,
};
use serde_json::Value;

const SERVER: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";
const TIMEOUT: Duration = Duration::from_secs(1800);

struct Options {
    mib: u64,
    stores: Vec<String>,
}

fn options() -> Options {
    let mut options = Options {
        mib: 512,
        stores: vec!["opfs".into(), "memory".into()],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mib" => {
                options.mib = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--mib takes a whole number of MiB");
            }
            "--stores" => {
                options.stores = args
                    .next()
                    .expect("--stores takes opfs,memory")
                    .split(',')
                    .map(str::to_owned)
                    .collect();
            }
            // `cargo bench` passes `--bench`; other harness flags mean nothing here.
            _ => {}
        }
    }
    options
}

/// Where the page's memory is, at each tenth of the download.
#[derive(Default)]
struct Breakdown {
    rows: Vec<String>,
    next_tenth: u64,
}

impl Breakdown {
    const HEAP: &str = "return performance.memory ? performance.memory.usedJSHeapSize : null;";

    fn sample(&mut self, page: &webdriver::Session, state: &Value, memory: &RendererMemory) {
        let (Some(verified), Some(total)) = (
            state["stats"]["verifiedBytes"].as_f64(),
            state["stats"]["totalBytes"].as_f64(),
        ) else {
            return;
        };
        if total <= 0.0 || verified * 10.0 < total * self.next_tenth as f64 {
            return;
        }
        let mib = |v: Option<f64>| v.map_or("?".into(), |b| format!("{:.0}", b / 1048576.0));
        let heap = page.eval(Self::HEAP).ok().and_then(|v| v.as_f64());
        let now = memory.largest_now();
        self.rows.push(format!(
            "  {:>3}%  renderer {:>5.0} MiB (own {:>4.0}, files {:>4.0}, shared {:>4.0})  JS heap {:>4} MiB  wasm memory {:>4} MiB",
            self.next_tenth * 10,
            now.total,
            now.anon,
            now.file,
            now.shmem,
            mib(heap),
            mib(state["wasmMemoryBytes"].as_f64()),
        ));
        self.next_tenth += 1;
    }

    fn print(&self) {
        for row in &self.rows {
            println!("{row}");
        }
    }
}

struct Figure {
    store: String,
    rate_mib_s: f64,
    wall: Duration,
    peak_mib: f64,
    peak_own_mib: f64,
}

fn main() {
    let options = options();
    let forwarded: Vec<String> = std::env::args().skip(1).collect();
    if !run_in_namespace(&forwarded) {
        return;
    }
    let artifacts = artifacts();
    let media = tempfile::tempdir().unwrap();
    random_file(&media.path().join("film.webm"), options.mib);
    let mut server = Running::spawn(
        "the server",
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", SERVER, "--origin-rate", "0", "--pkg", &pkg_dir()])
            .arg("--media")
            .arg(media.path()),
        &artifacts.join("bench-server.log"),
    );
    wait_for("the server", Duration::from_secs(600), || {
        server.check();
        harness::http_get(SERVER, "/torrents/film.webm.torrent")
            .is_some_and(|(status, _)| status == 200)
    });
    let (_chromedriver, webdriver) = start_chromedriver(&artifacts);
    let length = (options.mib << 20) as f64;

    let mut figures = Vec::new();
    for store in &options.stores {
        let (page, profile) = browser(&webdriver, &format!("bench-{store}"));
        let mut memory = RendererMemory::new(profile.path());
        let mut breakdown = Breakdown::default();
        let started = Instant::now();
        page.goto(&format!("{ORIGIN}/?autoplay=film.webm&storage={store}"))
            .unwrap();
        let state = loop {
            memory.sample();
            let state = page.eval(DEMO_STATE).unwrap_or(Value::Null);
            breakdown.sample(&page, &state, &memory);
            if state["doneAt"].is_number() {
                break state;
            }
            assert!(state["error"].is_null(), "{store}: {state}");
            assert!(started.elapsed() < TIMEOUT, "{store}: not done: {state}");
            std::thread::sleep(Duration::from_millis(100));
        };
        memory.sample();
        assert_eq!(
            state["storage"]["store"].as_str(),
            Some(store.as_str()),
            "{}",
            state["storage"]
        );
        let seconds =
            (state["doneAt"].as_f64().unwrap() - state["addedAt"].as_f64().unwrap()) / 1000.0;
        let figure = Figure {
            store: store.clone(),
            rate_mib_s: length / (1 << 20) as f64 / seconds,
            wall: started.elapsed(),
            peak_mib: memory.peak_mib(),
            peak_own_mib: memory.peak_own_mib(),
        };
        println!(
            "{:>6}: {:.1} MiB/s ({} MiB in {seconds:.1} s, {:.1?} from navigation), renderer peak {:.0} MiB (own {:.0})",
            figure.store,
            figure.rate_mib_s,
            options.mib,
            figure.wall,
            figure.peak_mib,
            figure.peak_own_mib
        );
        breakdown.print();
        figures.push(figure);
        drop(page);
        drop(profile);
    }
    let rate = |name: &str| {
        figures
            .iter()
            .find(|f| f.store == name)
            .map(|f| f.rate_mib_s)
    };
    if let (Some(opfs), Some(memory)) = (rate("opfs"), rate("memory")) {
        println!(
            "opfs / memory download rate: {:.2} (goal >= 0.8)",
            opfs / memory
        );
    }
    server.check();
}
