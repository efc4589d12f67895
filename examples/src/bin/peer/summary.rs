//! The final report, as text or JSON.

use std::path::PathBuf;

use serde::Serialize;

/// What a run did.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    /// `seed` or `fetch`.
    pub(crate) command: &'static str,
    pub(crate) info_hash: String,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) total_bytes: u64,
    /// Every piece is held and matches its hash (re-checked on disk).
    pub(crate) complete: bool,
    /// Verified bytes that came from peers this run.
    pub(crate) bytes_p2p: u64,
    /// Verified bytes that came from the web seed this run.
    pub(crate) bytes_http: u64,
    /// Bytes the web seed sent, wasted ones included.
    pub(crate) bytes_http_received: u64,
    /// Bytes held before the run started (resumed or seeded).
    pub(crate) bytes_resumed: u64,
    pub(crate) bytes_uploaded: u64,
    pub(crate) elapsed_s: f64,
    /// Distinct peers that completed a handshake with us.
    pub(crate) peers: usize,
    /// Connections to peers that failed to open (ICE, DTLS, timeout).
    pub(crate) failed_connections: usize,
    /// Peers banned for bad data.
    pub(crate) banned: usize,
    pub(crate) hash_failures: u32,
}

impl Summary {
    /// Prints the summary: JSON on stdout, or text on stderr.
    pub(crate) fn print(&self, json: bool) {
        if json {
            match serde_json::to_string(self) {
                #[allow(clippy::print_stdout)]
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("peer: cannot write the summary: {e}"),
            }
            return;
        }
        let fetched = self.bytes_p2p + self.bytes_http;
        let share = if fetched == 0 {
            0.0
        } else {
            100.0 * self.bytes_p2p as f64 / fetched as f64
        };
        eprintln!(
            "{} {} ({}): {} in {:.1} s",
            self.command,
            self.name,
            self.info_hash,
            if self.complete {
                "complete, verified"
            } else {
                "INCOMPLETE"
            },
            self.elapsed_s,
        );
        eprintln!(
            "  from peers {} · from HTTP {} ({share:.0}% P2P) · uploaded {} · {} peers · {} banned",
            bytes(self.bytes_p2p),
            bytes(self.bytes_http),
            bytes(self.bytes_uploaded),
            self.peers,
            self.banned,
        );
        eprintln!("  {}", self.path.display());
    }
}

/// `1.5 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
