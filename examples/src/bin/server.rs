//! The chunkswarm demo: tracker, HTTP origin, catalog and the browser demo
//! page in one server, on a built-in sample video.
//!
//! ```text
//! cargo run --release -p chunkswarm-examples --bin server
//! # then open http://127.0.0.1:8080/ in two browser windows
//! ```
//!
//! On first run it builds the wasm JS package of `chunkswarm-wasm` (and
//! installs the `wasm32-unknown-unknown` target and `wasm-bindgen-cli` at
//! the pinned version if they are missing); later runs rebuild it only when
//! its sources changed. `--media DIR` serves your own videos instead of the
//! sample: every audio or video file below DIR is in the catalog, titled by
//! an optional sidecar `NAME.json` (`{"title", "year", "description",
//! "poster", "duration"}`). Logs go to stderr, filtered by `RUST_LOG`
//! (default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chunkswarm_core::layout::DEFAULT_PIECE_LENGTH;
use chunkswarm_examples::demo::{self, DemoOptions, wasm_pkg};
use chunkswarm_tracker::{Config, IceConfig, Limits, Tracker, TurnSecret, serve_app};
use clap::Parser;

/// Serve the chunkswarm browser demo: tracker, origin, catalog and page.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on. Browsers on other machines need a reachable
    /// address (e.g. 0.0.0.0:8080) and --public-url.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The media folder to serve and list (default: the built-in sample).
    #[arg(long, value_name = "DIR")]
    media: Option<PathBuf>,
    /// The URL browsers reach this server at, written into torrents as
    /// tracker and web seed (default: http://ADDR). Service Workers, which
    /// stream the video, need https:// or localhost.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Bandwidth cap on the origin in bytes per second (k, M: powers of
    /// 1024), so a local demo shows pieces arriving and peers taking over;
    /// 0 for no cap.
    #[arg(long, value_name = "RATE", default_value = "256k", value_parser = parse_rate)]
    origin_rate: Rate,
    /// Piece length of the torrents, in bytes [default: 131072 for the
    /// built-in sample, 1048576 (BitTorrent's usual 1 MiB) with --media].
    #[arg(long, value_name = "BYTES")]
    piece_length: Option<u32>,
    /// Serve the wasm package in this folder as it is (built beforehand with
    /// chunkswarm-wasm/build-pkg.sh) instead of building one.
    #[arg(long, value_name = "DIR")]
    pkg: Option<PathBuf>,
    /// Never build the wasm package; fail if there is none.
    #[arg(long)]
    no_build: bool,
    /// A STUN or TURN URL the tracker hands to browsers and native peers
    /// (e.g. turn:turn.example:3478); repeat or separate with commas. TURN
    /// URLs need --turn-secret.
    #[arg(long = "turn-url", value_name = "URL", value_delimiter = ',')]
    turn_urls: Vec<String>,
    /// The TURN server's shared secret (coturn's static-auth-secret, with
    /// use-auth-secret): the tracker gives each client credentials made from
    /// it that expire after --turn-ttl. Better from the environment.
    #[arg(
        long,
        value_name = "SECRET",
        env = "CHUNKSWARM_TURN_SECRET",
        hide_env_values = true
    )]
    turn_secret: Option<TurnSecret>,
    /// Seconds a TURN credential lasts.
    #[arg(long, value_name = "SECONDS", default_value_t = IceConfig::default().ttl.as_secs())]
    turn_ttl: u64,
}

/// A byte rate; `None` for no limit.
#[derive(Debug, Clone, Copy)]
struct Rate(Option<u64>);

fn parse_rate(text: &str) -> Result<Rate, demo::ParseRateError> {
    demo::parse_rate(text).map(Rate)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let pkg_dir = match &args.pkg {
        Some(dir) if dir.join(wasm_pkg::PKG_FILES[0]).is_file() => dir.clone(),
        Some(dir) => {
            tracing::error!(dir = %dir.display(), "--pkg: no {} there", wasm_pkg::PKG_FILES[0]);
            return ExitCode::FAILURE;
        }
        None => match wasm_pkg::ensure(!args.no_build) {
            Ok(dir) => dir,
            Err(e) => {
                tracing::error!(error = %e, "no wasm package");
                return ExitCode::FAILURE;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, pkg_dir))
}

async fn run(args: Args, pkg_dir: PathBuf) -> ExitCode {
    let media = args.media.clone().unwrap_or_else(demo::sample_media_dir);
    let piece_length = args.piece_length.unwrap_or(if args.media.is_some() {
        DEFAULT_PIECE_LENGTH
    } else {
        demo::DEMO_PIECE_LENGTH
    });
    let ice = (!args.turn_urls.is_empty() || args.turn_secret.is_some()).then(|| IceConfig {
        urls: args.turn_urls.clone(),
        turn_secret: args.turn_secret.clone(),
        ttl: std::time::Duration::from_secs(args.turn_ttl),
    });
    let config = Config {
        media_dir: Some(media.clone()),
        public_url: args.public_url.clone(),
        piece_length,
        ice,
        limits: Limits {
            // Every page of a local demo comes from one address.
            ip_requests_per_second: 200,
            ip_burst: 2000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let tracker = match Tracker::new(config) {
        Ok(tracker) => tracker,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tracker");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(addr = %args.addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let options = DemoOptions {
        pkg_dir,
        origin_rate: args.origin_rate.0,
    };
    let app = demo::app(tracker.clone(), &options);
    let url = args
        .public_url
        .clone()
        .unwrap_or_else(|| match listener.local_addr() {
            Ok(addr) if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
            Ok(addr) => format!("http://{addr}"),
            Err(_) => format!("http://{}", args.addr),
        });
    tracing::info!(
        media = %media.display(),
        origin_rate = ?options.origin_rate,
        piece_length,
        "demo ready: open {url}/ in two browser windows (Ctrl-C stops)"
    );
    let shutdown = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    match serve_app(listener, tracker, app, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
