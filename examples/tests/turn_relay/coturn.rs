//! A real TURN server for the test: Debian's coturn (`turnserver`), with the
//! TURN REST API's shared secret (`use-auth-secret`), on loopback, no TLS,
//! no CLI, relaying to loopback peers; and coturn's own client
//! (`turnutils_uclient`) to try credentials on it.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `turnserver`, killed when dropped.
pub(crate) struct Coturn {
    child: Child,
    /// Its UDP and TCP port on 127.0.0.1.
    pub(crate) port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// A UDP port free on 127.0.0.1 now.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a UDP socket on 127.0.0.1")
}

impl Coturn {
    /// Starts it with `secret` and waits for its UDP listener; its log goes
    /// to `log`.
    pub(crate) fn start(secret: &str, log: &Path) -> Self {
        let port = free_udp_port();
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new("turnserver")
            .args([
                "-n", // no configuration file
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--listening-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--relay-ip=127.0.0.1",
                "--min-port=49152",
                "--max-port=49352",
                "--allow-loopback-peers",
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
                "--realm=chunkswarm.test",
                "--fingerprint",
                "--log-file=stdout",
                "--simple-log",
                "--verbose",
            ])
            .arg(format!("--db={}", dir.path().join("turndb").display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("turn.pid").display()
            ))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start turnserver (Debian's coturn): {e}"));
        let mut coturn = Self {
            child,
            port,
            log: log.to_owned(),
            _dir: dir,
        };
        let ready = format!("UDP listener opened on: 127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !coturn.log().contains(&ready) {
            if let Some(status) = coturn.child.try_wait().unwrap() {
                panic!("turnserver exited: {status}\n{}", coturn.log());
            }
            assert!(
                Instant::now() < deadline,
                "turnserver not ready:\n{}",
                coturn.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        coturn
    }

    /// The TURN URL peers use.
    pub(crate) fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    /// What it has logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether coturn grants an allocation to `username` with `credential`:
    /// coturn's own client allocates a relay and sends one message through
    /// it to a second allocation of its own.
    pub(crate) fn allocates(&self, username: &str, credential: &str) -> bool {
        let output = Command::new("turnutils_uclient")
            .args(["-y", "-c", "-n", "1", "-m", "1"])
            .args(["-u", username, "-w", credential])
            .args(["-p", &self.port.to_string(), "127.0.0.1"])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run turnutils_uclient (Debian's coturn)");
        let text = String::from_utf8_lossy(&output.stdout);
        eprintln!(
            "turnutils_uclient as {username:?}: {} ({})",
            output.status,
            text.lines().last().unwrap_or("")
        );
        output.status.success()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
