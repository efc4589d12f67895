//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A native chunkswarm peer: WebRTC data channels, the WebTorrent tracker,
/// HTTP web seeds.
#[derive(Debug, Parser)]
#[command(name = "peer", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) common: Common,
    /// More logging on stderr (-v, -vv, -vvv); `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Seed FILE (a file or a folder): under the given torrent (after
    /// checking FILE against its piece hashes), or under a new torrent
    /// written to FILE.torrent.
    Seed(SeedArgs),
    /// Download a torrent's content to OUT, from peers first and the web
    /// seed where peers cannot help.
    Fetch(FetchArgs),
}

/// Settings both commands share.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The WebTorrent tracker (ws:// or wss://); default: the torrent's.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) tracker: Option<String>,
    /// Run without a tracker (no peers): the web seed alone.
    #[arg(long, global = true, conflicts_with = "tracker")]
    pub(crate) no_tracker: bool,
    /// The HTTP web seed; default: the torrent's `url-list`.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) web_seed: Option<String>,
    /// Never use the web seed.
    #[arg(long, global = true, conflicts_with = "web_seed")]
    pub(crate) no_web_seed: bool,
    /// Cap the upload rate, in bytes per second (suffixes k, M, G: 1024-based).
    #[arg(long, global = true, value_name = "RATE", value_parser = parse_rate)]
    pub(crate) upload_limit: Option<u64>,
    /// A STUN or TURN server URL (repeatable). Default: the ones the
    /// tracker hands out (with short-lived TURN credentials), if any; given
    /// here, those are ignored.
    #[arg(long = "ice-server", global = true, value_name = "URL")]
    pub(crate) ice_servers: Vec<String>,
    /// The user name for the TURN servers.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "CHUNKSWARM_TURN_USERNAME"
    )]
    pub(crate) turn_username: Option<String>,
    /// The credential for the TURN servers (better from the environment).
    #[arg(
        long,
        global = true,
        value_name = "SECRET",
        env = "CHUNKSWARM_TURN_CREDENTIAL",
        hide_env_values = true
    )]
    pub(crate) turn_credential: Option<String>,
    /// Ignore the STUN/TURN servers the tracker hands out.
    #[arg(long, global = true)]
    pub(crate) no_tracker_ice: bool,
    /// Connect only through TURN relays (ICE transport policy `relay`):
    /// hides our addresses from peers; tests a TURN server.
    #[arg(long, global = true)]
    pub(crate) relay_only: bool,
    /// Use only loopback addresses for WebRTC and no mDNS (tests, one-machine demos).
    #[arg(long, global = true)]
    pub(crate) loopback: bool,
    /// Print a JSON summary on stdout at the end instead of the text one.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// The file to seed, or the folder of a multi-file torrent.
    pub(crate) file: PathBuf,
    /// The torrent FILE belongs to: a path or an http(s) URL.
    #[arg(long, value_name = "TORRENT_PATH_OR_URL")]
    pub(crate) torrent: Option<String>,
    /// Piece length of a torrent made here, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub(crate) piece_length: u32,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<f64>,
}

#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// The torrent: a path, an http(s) URL, or a magnet link. A link's
    /// torrent comes from its `xs` (the URL of its .torrent) if it has one,
    /// else its metadata from the peers of its tracker (or --tracker).
    pub(crate) torrent: String,
    /// Where the content goes: a file path, or an existing directory to put
    /// the torrent's file in. A partial file there is resumed.
    #[arg(short, long, value_name = "OUT")]
    pub(crate) output: PathBuf,
    /// Keep seeding this many seconds after the download completes.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub(crate) seed_time: f64,
    /// Give up (exit code 1) if not complete after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) timeout: Option<f64>,
}

/// `1500`, `64k`, `2M`, `1G` (1024-based).
fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, scale) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&text[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("not a rate: {text:?} (try 500k or 2M)"))?;
    value
        .checked_mul(scale)
        .filter(|&rate| rate > 0)
        .ok_or_else(|| format!("rate out of range: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_take_binary_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_rate("1500"), Ok(1500));
        assert_eq!(parse_rate("64k"), Ok(64 << 10));
        assert_eq!(parse_rate("2M"), Ok(2 << 20));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("99999999999999G").is_err());
    }
}
