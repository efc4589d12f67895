//! A real `redis-server` and tracker processes in cluster mode, on free
//! loopback ports; each is killed when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (free when asked; the server takes it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `redis-server` without persistence on a loopback port.
pub(crate) struct Redis {
    pub(crate) port: u16,
    child: Option<Child>,
}

impl Redis {
    pub(crate) fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it (again) on its port.
    pub(crate) fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: run .ci/install (Debian package redis-server)");
        self.child = Some(child);
        wait_for_port(([127, 0, 0, 1], self.port).into(), "redis-server");
    }

    /// Kills it; the data is gone.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `chunkswarm-tracker` process joined to a Redis.
pub(crate) struct Node {
    pub(crate) addr: SocketAddr,
    child: Child,
}

impl Node {
    pub(crate) fn start(redis_url: &str) -> Self {
        Self::start_with(redis_url, &[])
    }

    /// A node with more command-line arguments.
    pub(crate) fn start_with(redis_url: &str, args: &[&str]) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(env!("CARGO_BIN_EXE_chunkswarm-tracker"))
            .args(["--listen", &addr.to_string(), "--redis", redis_url])
            .args(["--ip-rate", "0", "--lazy-torrents"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the tracker binary");
        wait_for_port(addr, "tracker");
        Self { addr, child }
    }

    /// Kills the process at once (SIGKILL): no goodbye to Redis.
    pub(crate) fn kill(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
