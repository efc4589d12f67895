//! `chunkswarm-tracker`: the tracker, origin and catalog as one server.
//!
//! Every flag can also be set through the environment variable named in
//! `--help`; logs go to stderr, filtered by `RUST_LOG` (default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chunkswarm_tracker::{
    Config, IceConfig, IceConfigError, IpCidr, Limits, RateBudget, TlsFiles, Tracker, TurnSecret,
    serve,
};
use clap::Parser;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The chunkswarm tracker: WebTorrent-compatible signaling, the chunk
/// registry, the HTTP origin (web seed) and the catalog.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "CHUNKSWARM_LISTEN", default_value = "0.0.0.0:8000")]
    listen: SocketAddr,
    /// Media library directory served by the origin and listed by the catalog.
    #[arg(long, env = "CHUNKSWARM_MEDIA")]
    media: Option<PathBuf>,
    /// URL clients reach this server at (default: from --listen).
    #[arg(long, env = "CHUNKSWARM_PUBLIC_URL")]
    public_url: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key, serves https:// and wss://.
    #[arg(long, env = "CHUNKSWARM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CHUNKSWARM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Access-Control-Allow-Origin for HTTP answers; empty for no CORS headers.
    #[arg(long, env = "CHUNKSWARM_CORS_ORIGIN", default_value = "*")]
    cors_origin: String,
    /// Piece length of the torrents made of library files, in bytes.
    #[arg(long, env = "CHUNKSWARM_PIECE_LENGTH", default_value_t = Config::default().piece_length)]
    piece_length: u32,
    /// Make torrents only when first requested, not in the background at start.
    #[arg(long, env = "CHUNKSWARM_LAZY_TORRENTS")]
    lazy_torrents: bool,
    /// Worker threads (default: one per core).
    #[arg(long, env = "CHUNKSWARM_THREADS")]
    threads: Option<usize>,
    /// Re-announce interval told to clients, in seconds.
    #[arg(long, env = "CHUNKSWARM_ANNOUNCE_INTERVAL", default_value_t = 120)]
    announce_interval: u64,
    /// Largest WebSocket message, in bytes.
    #[arg(long, env = "CHUNKSWARM_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Offers forwarded per announce.
    #[arg(long, env = "CHUNKSWARM_MAX_OFFERS", default_value_t = Limits::default().max_offers_per_announce)]
    max_offers: usize,
    /// Swarms per connection.
    #[arg(long, env = "CHUNKSWARM_MAX_SWARMS_PER_CONNECTION", default_value_t = Limits::default().max_swarms_per_connection)]
    max_swarms_per_connection: usize,
    /// Open WebSocket connections in all.
    #[arg(long, env = "CHUNKSWARM_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Open WebSocket connections per address.
    #[arg(long, env = "CHUNKSWARM_MAX_CONNECTIONS_PER_IP", default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Requests per second per address (0: no rate limit).
    #[arg(long, env = "CHUNKSWARM_IP_RATE", default_value_t = Limits::default().ip_requests_per_second)]
    ip_rate: u32,
    /// Burst of requests per address.
    #[arg(long, env = "CHUNKSWARM_IP_BURST", default_value_t = Limits::default().ip_burst)]
    ip_burst: u32,
    /// Seconds of silence before a connection is closed.
    #[arg(long, env = "CHUNKSWARM_IDLE_TIMEOUT", default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout: u64,
    /// A reverse proxy or load balancer (an address or CIDR block, e.g.
    /// 10.0.0.0/8) whose X-Forwarded-For names the client; repeat or
    /// separate with commas.
    #[arg(
        long = "trusted-proxy",
        env = "CHUNKSWARM_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<IpCidr>,
    /// Connections from --trusted-proxy addresses start with a PROXY protocol header (v1 or v2).
    #[arg(long, env = "CHUNKSWARM_PROXY_PROTOCOL", requires = "trusted_proxies")]
    proxy_protocol: bool,
    /// Abusive messages (unparsable, spoofed, over the rate limit) a
    /// connection may send at once before it is closed.
    #[arg(long, env = "CHUNKSWARM_ABUSE_BURST", default_value_t = Limits::default().abuse.burst)]
    abuse_burst: u32,
    /// Abusive messages per second a connection may keep sending.
    #[arg(long, env = "CHUNKSWARM_ABUSE_RATE", default_value_t = Limits::default().abuse.per_second)]
    abuse_rate: f64,
    /// Cluster mode: several trackers sharing this Redis (redis://host:port/db) act as one.
    #[arg(long, env = "CHUNKSWARM_REDIS")]
    redis: Option<String>,
    /// A STUN or TURN URL handed to clients (e.g. turn:turn.example:3478);
    /// repeat or separate with commas. TURN URLs need --turn-secret.
    #[arg(long = "turn-url", env = "CHUNKSWARM_TURN_URLS", value_delimiter = ',')]
    turn_urls: Vec<String>,
    /// The TURN server's shared secret (coturn's static-auth-secret): clients
    /// get credentials made from it that expire after --turn-ttl. Prefer the
    /// environment variable, which other users cannot read in `ps`.
    #[arg(long, env = "CHUNKSWARM_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<TurnSecret>,
    /// Seconds a TURN credential lasts.
    #[arg(long, env = "CHUNKSWARM_TURN_TTL", default_value_t = IceConfig::default().ttl.as_secs())]
    turn_ttl: u64,
    /// Seconds a forwarded offer may be answered.
    #[arg(long, env = "CHUNKSWARM_OFFER_TTL", default_value_t = Limits::default().offer_ttl.as_secs())]
    offer_ttl: u64,
}

impl Args {
    fn ice(&self) -> Result<Option<IceConfig>, IceConfigError> {
        let turn_secret = self.turn_secret.clone();
        if self.turn_urls.is_empty() && turn_secret.is_none() {
            return Ok(None);
        }
        Ok(Some(IceConfig {
            urls: self.turn_urls.clone(),
            turn_secret,
            ttl: Duration::from_secs(self.turn_ttl),
        }))
    }

    fn config(&self) -> Result<Config, IceConfigError> {
        let limits = Limits {
            max_message_bytes: self.max_message_bytes,
            max_offers_per_announce: self.max_offers,
            max_swarms_per_connection: self.max_swarms_per_connection,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            ip_requests_per_second: self.ip_rate,
            ip_burst: self.ip_burst,
            idle_timeout: Duration::from_secs(self.idle_timeout),
            offer_ttl: Duration::from_secs(self.offer_ttl),
            abuse: RateBudget {
                per_second: self.abuse_rate,
                burst: self.abuse_burst,
            },
            ..Limits::default()
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        Ok(Config {
            media_dir: self.media.clone(),
            public_url: self.public_url.clone(),
            tls,
            announce_interval: Duration::from_secs(self.announce_interval),
            cors_allow_origin: Some(self.cors_origin.clone()).filter(|o| !o.is_empty()),
            piece_length: self.piece_length,
            prepare_torrents: !self.lazy_torrents,
            trusted_proxies: self.trusted_proxies.clone(),
            proxy_protocol: self.proxy_protocol,
            redis: self.redis.clone(),
            ice: self.ice()?,
            limits,
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad ICE server options");
            return ExitCode::FAILURE;
        }
    };
    let tracker = match Tracker::new(config) {
        Ok(tracker) => tracker,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tracker");
            return ExitCode::FAILURE;
        }
    };
    let listener = match chunkswarm_tracker::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(addr = %args.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match serve(listener, tracker, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tracker failed");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
