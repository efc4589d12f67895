//! A native chunkswarm peer: seed a file, or fetch one from peers and the
//! web seed.
//!
//! ```text
//! peer seed FILE [--torrent TORRENT_PATH_OR_URL] [--tracker URL] [--web-seed URL]
//! peer fetch TORRENT_PATH_OR_URL -o OUT [--tracker URL] [--web-seed URL | --no-web-seed]
//! ```
//!
//! The tracker and web seed come from the torrent unless given. A progress
//! bar shows rates and the P2P/HTTP split; `--json` prints a summary
//! (`bytes_p2p`, `bytes_http`, `elapsed_s`, `peers`, `banned`, ...) on
//! stdout. `fetch` exits with 0 only when the output is complete and
//! verified against every piece hash.

mod cli;
mod progress;
mod run;
mod source;
mod summary;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};

/// Exit code of a fetch that did not complete (timeout, no sources left).
const INCOMPLETE: u8 = 1;
/// Exit code after Ctrl-C or SIGTERM.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("peer: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Seed(args) => run::seed(args, cli.common).await,
            Command::Fetch(args) => run::fetch(args, cli.common).await,
        }
    });
    match result {
        Ok(run::Outcome::Complete) => ExitCode::SUCCESS,
        Ok(run::Outcome::Incomplete) => ExitCode::from(INCOMPLETE),
        Ok(run::Outcome::Interrupted) => ExitCode::from(INTERRUPTED),
        Err(e) => {
            eprintln!("peer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level set by `-v`.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info,chunkswarm_core=info",
        2 => "info,chunkswarm_core=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
