//! The browser demo that the `server` binary serves: the tracker, origin and
//! catalog of [`chunkswarm_tracker`], plus the demo page and the wasm JS
//! package, in one axum application.
//!
//! # Call order
//!
//! 1. [`wasm_pkg::ensure`] builds the JavaScript package of
//!    `chunkswarm-wasm` when it is missing or older than its sources
//!    (installing the `wasm32-unknown-unknown` target and `wasm-bindgen-cli`
//!    at the version pinned in `Cargo.lock` if they are missing).
//! 2. Build a [`Tracker`] whose media directory holds the videos
//!    ([`sample_media_dir`] is the built-in sample).
//! 3. [`app`] wraps the tracker's routes with the page, the package and the
//!    origin throttle; hand it to [`chunkswarm_tracker::serve_app`].
//!
//! # Routes added to the tracker's
//!
//! | path | what |
//! |---|---|
//! | `GET /` (without a WebSocket upgrade) | the demo page |
//! | `GET /app/{file}` | the page's script, style sheet and icon |
//! | `GET /pkg/{path}` | the wasm JS package (`chunkswarm_wasm.js`, the `.wasm`, the streaming helper and its Service Worker) |
//!
//! A WebSocket upgrade on `/` still reaches the tracker, so WebTorrent
//! clients that announce to the bare host keep working.

mod assets;
mod throttle;
pub mod wasm_pkg;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use chunkswarm_tracker::{Tracker, router};

pub use throttle::{OriginThrottle, ParseRateError, parse_rate};

/// The folder of the built-in sample video (`sample.webm`, with its sidecar
/// `sample.webm.json` and `make-sample.sh`, which made it).
pub fn sample_media_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("media")
}

/// The piece length the demo gives its torrents unless told otherwise:
/// 128 KiB, so the 3.5 MiB sample spreads over 28 pieces and the chunk grid
/// has something to show. Long films do better with the BitTorrent default
/// of 1 MiB (`--piece-length 1048576`).
pub const DEMO_PIECE_LENGTH: u32 = 128 << 10;

/// How the demo application is put together.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The folder holding the built wasm JS package.
    pub pkg_dir: PathBuf,
    /// Bytes per second the origin (`/media/`) may send in all; `None` for
    /// no limit.
    pub origin_rate: Option<u64>,
}

/// The tracker's routes with the demo page, the wasm package and, if
/// [`DemoOptions::origin_rate`] is set, a throttled origin.
pub fn app(tracker: Tracker, options: &DemoOptions) -> Router {
    let pkg_dir = Arc::new(options.pkg_dir.clone());
    let pages = Router::new()
        .route("/app/{file}", get(assets::app_file))
        .route(
            "/pkg/{*path}",
            get(assets::pkg_file).with_state(Arc::clone(&pkg_dir)),
        )
        .fallback(assets::not_found);
    let mut app = router(tracker)
        .fallback_service(pages)
        .layer(axum::middleware::from_fn(assets::page_at_root));
    if let Some(rate) = options.origin_rate {
        let throttle = Arc::new(OriginThrottle::new(rate));
        app = app.layer(axum::middleware::from_fn_with_state(
            throttle,
            throttle::throttle_media,
        ));
    }
    app
}
