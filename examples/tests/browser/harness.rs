//! What the browser tests share: re-running a test inside a network
//! namespace, child processes, Chromium sessions, plain HTTP to the server,
//! and the renderer processes' peak memory.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chunkswarm_examples::demo::wasm_pkg::PkgBuild;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::webdriver::{Driver, Session};

#[path = "../netns/mod.rs"]
pub(crate) mod netns;

/// Reads the demo page's `window.chunkswarmDemo` as JSON.
pub(crate) const DEMO_STATE: &str =
    "const d = window.chunkswarmDemo; return d ? JSON.parse(JSON.stringify(d)) : null;";
const FULL_LOG: &str = "return Array.from(document.querySelectorAll('#log li')).map(li => li.className + ' ' + li.textContent).join('\\n');";

/// Saves the demo page's log (every line it shows) for a look after the run.
pub(crate) fn save_log(page: &Session, file: &Path) {
    if let Ok(Value::String(log)) = page.eval(FULL_LOG) {
        let _ = std::fs::write(file, log);
    }
}

/// Writes `mib` MiB of pseudo-random bytes (xorshift64) to `path`; returns
/// their hex SHA-256.
pub(crate) fn random_file(path: &Path, mib: u64) -> String {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        hash.update(&chunk);
        out.write_all(&chunk).unwrap();
    }
    out.flush().unwrap();
    hex::encode(hash.finalize())
}

pub(crate) const CHROMEDRIVER_ADDR: &str = "127.0.0.1:9515";

pub(crate) fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

pub(crate) fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// `target/artifacts/`: logs and screenshots kept after a run.
pub(crate) fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether this is the run inside the namespace. Outside, checks the
/// tools, builds the wasm package, runs `test_name` again under
/// `unshare --net` and asserts it passed.
pub(crate) fn in_namespace(test_name: &str) -> bool {
    let args = ["--exact", test_name, "--nocapture", "--test-threads=1"];
    run_in_namespace(&args.map(String::from))
}

/// [`in_namespace`] for a program of its own: the re-run gets `args`.
pub(crate) fn run_in_namespace(args: &[String]) -> bool {
    if netns::inside() {
        return true;
    }
    // One browser test at a time: the pages' timing is what they measure
    // (who serves whom before a deadline), and Chromiums sharing the cores
    // with each other would measure the machine instead.
    let _one_at_a_time = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let missing: Vec<String> = [chromium(), chromedriver(), "unshare".into(), "ip".into()]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    assert!(
        missing.is_empty(),
        "the browser test needs {missing:?}: install Debian's chromium, chromium-driver, \
         util-linux and iproute2 (`bash .ci/install` does), or point $CHROMIUM and \
         $CHROMEDRIVER at them"
    );
    let pkg = PkgBuild::for_this_workspace();
    pkg.ensure(true)
        .unwrap_or_else(|e| panic!("cannot build the wasm package: {e}"));

    let started = Instant::now();
    let status = netns::rerun(args, &[("CHUNKSWARM_DEMO_PKG", pkg.out_dir.as_os_str())]);
    eprintln!("namespace run took {:?}", started.elapsed());
    assert!(
        status.success(),
        "the test inside the network namespace failed ({status}); see its output above. \
         If unshare itself failed, run as root or enable unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1)"
    );
    false
}

/// The wasm package the outer run built.
pub(crate) fn pkg_dir() -> String {
    std::env::var("CHUNKSWARM_DEMO_PKG").expect("the outer run names the package")
}

/// A child process killed when dropped.
pub(crate) struct Running {
    name: &'static str,
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub(crate) fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child }
    }

    /// Panics if the process has exited.
    pub(crate) fn check(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

/// Polls `ready` every 100 ms, panicking after `timeout`.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} not ready in {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP GET to `server`: status and body.
pub(crate) fn http_get(server: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    use std::io::{Read as _, Write as _};
    let mut stream = TcpStream::connect(server).ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{path}: chunked answers are not expected"
    );
    Some((status, raw[split + 4..].to_vec()))
}

/// Starts chromedriver and waits until it answers.
pub(crate) fn start_chromedriver(artifacts: &Path) -> (Running, Driver) {
    let mut process = Running::spawn(
        "chromedriver",
        Command::new(chromedriver()).arg(format!(
            "--port={}",
            CHROMEDRIVER_ADDR.rsplit(':').next().unwrap()
        )),
        &artifacts.join("chromedriver.log"),
    );
    let driver = Driver::new(CHROMEDRIVER_ADDR.parse().unwrap());
    wait_for("chromedriver", Duration::from_secs(30), || {
        process.check();
        driver.ready()
    });
    (process, driver)
}

/// A headless Chromium with a fresh profile, as ARCHITECTURE.md lists its
/// flags; returns the session and its profile folder, deleted when dropped
/// (drop the session first).
pub(crate) fn browser(webdriver: &Driver, name: &str) -> (Session, tempfile::TempDir) {
    let profile = tempfile::Builder::new()
        .prefix(&format!("chromium-{name}-"))
        .tempdir()
        .unwrap();
    let args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-loopback-in-peer-connection",
        "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,1000",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect();
    let session = webdriver
        .session(&chromium(), &args)
        .unwrap_or_else(|e| panic!("cannot start Chromium {name}: {e}"));
    (session, profile)
}

/// The renderer processes of the Chromium whose profile is `profile`.
fn renderers(profile: &Path) -> Vec<u32> {
    let flag = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let procs: Vec<(u32, u32, String)> = entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The parent is the second field after the parenthesised name.
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((
                pid,
                ppid,
                String::from_utf8_lossy(&cmdline).replace('\0', " "),
            ))
        })
        .collect();
    let browser: Vec<u32> = procs
        .iter()
        .filter(|(_, _, cmd)| cmd.contains(&flag) && !cmd.contains("--type="))
        .map(|(pid, _, _)| *pid)
        .collect();
    // Renderers descend from the browser process (through a zygote).
    let mut family = browser.clone();
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, _) in &procs {
            if family.contains(ppid) && !family.contains(pid) {
                family.push(*pid);
                grew = true;
            }
        }
    }
    procs
        .iter()
        .filter(|(pid, _, cmd)| family.contains(pid) && cmd.contains("--type=renderer"))
        .map(|(pid, _, _)| *pid)
        .collect()
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One renderer's resident memory by kind, in MiB.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Resident {
    pub(crate) total: f64,
    pub(crate) anon: f64,
    pub(crate) file: f64,
    pub(crate) shmem: f64,
}

/// Tracks the peak resident memory of one Chromium's renderer processes.
#[derive(Debug)]
pub(crate) struct RendererMemory {
    profile: PathBuf,
    peak_kib: u64,
    peak_own_kib: u64,
}

impl RendererMemory {
    pub(crate) fn new(profile: &Path) -> Self {
        Self {
            profile: profile.to_owned(),
            peak_kib: 0,
            peak_own_kib: 0,
        }
    }

    /// Reads each renderer's peak RSS (`VmHWM`) now, and its own memory
    /// (`RssAnon` + `VmSwap`, which have no kernel-kept peak: the peak is of
    /// samples); call it often, since a renderer replaced on reload takes
    /// its peak with it.
    pub(crate) fn sample(&mut self) {
        for pid in renderers(&self.profile) {
            if let Some(kib) = status_kib(pid, "VmHWM:") {
                self.peak_kib = self.peak_kib.max(kib);
            }
            if let Some(kib) = status_kib(pid, "RssAnon:") {
                let swapped = status_kib(pid, "VmSwap:").unwrap_or(0);
                self.peak_own_kib = self.peak_own_kib.max(kib + swapped);
            }
        }
    }

    /// The largest renderer's resident memory right now, split by kind:
    /// its own (anonymous) pages, mapped files (Chromium's code mostly) and
    /// shared memory (IPC buffers such as network data pipes), in MiB.
    pub(crate) fn largest_now(&self) -> Resident {
        renderers(&self.profile)
            .into_iter()
            .filter_map(|pid| {
                let mib = |field| Some(status_kib(pid, field)? as f64 / 1024.0);
                Some(Resident {
                    total: mib("VmRSS:")?,
                    anon: mib("RssAnon:")?,
                    file: mib("RssFile:")?,
                    shmem: mib("RssShmem:")?,
                })
            })
            .max_by(|a, b| a.total.total_cmp(&b.total))
            .unwrap_or_default()
    }

    /// The highest peak seen, in MiB.
    pub(crate) fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }

    /// The highest own memory sampled, in MiB: anonymous pages, resident
    /// or swapped, so not Chromium's code and other mapped files, which
    /// every renderer shares, nor shared memory. This is the process's
    /// private memory footprint as Chromium defines it on Linux: what its
    /// task manager shows as "Memory footprint", and what the DevTools
    /// protocol's memory dumps (`Tracing.requestMemoryDump`) report as
    /// `private_footprint_bytes`.
    pub(crate) fn peak_own_mib(&self) -> f64 {
        self.peak_own_kib as f64 / 1024.0
    }
}
