//! The progress bar: verified bytes, rates, the P2P/HTTP split.

use chunkswarm_core::swarm::Stats;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::summary::bytes;

/// A bar on stderr (drawn only on a terminal, never with `--json`).
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(crate) fn new(total_bytes: u64, label: &str, hidden: bool) -> Self {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30.green/blue}] {percent:>3}% {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▌ ");
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        Self { bar }
    }

    pub(crate) fn update(&self, stats: &Stats) {
        self.bar.set_position(stats.verified_bytes);
        let fetched = stats.p2p_bytes + stats.http_bytes;
        let share = if fetched == 0 {
            String::new()
        } else {
            format!(
                " · {:.0}% P2P",
                100.0 * stats.p2p_bytes as f64 / fetched as f64
            )
        };
        self.bar.set_message(format!(
            "↓ {}/s peers + {}/s HTTP{share} · ↑ {}/s ({}) · {} peers{}",
            bytes(stats.p2p_rate as u64),
            bytes(stats.http_rate as u64),
            bytes(stats.upload_rate as u64),
            bytes(stats.uploaded_bytes),
            stats.peers,
            if stats.banned > 0 {
                format!(" · {} banned", stats.banned)
            } else {
                String::new()
            },
        ));
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
