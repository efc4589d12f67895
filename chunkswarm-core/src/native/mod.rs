//! The native adapter (feature `native`): the [driver](crate::driver) on
//! tokio, with WebRTC data channels (webrtc-rs), the WebSocket tracker as
//! signaling, HTTP range requests to the web seed, and an on-disk store.
//!
//! Most programs want the [`Client`](crate::client::Client), which wires
//! all of this per torrent. By hand, for another store or several torrents
//! on one driver:
//!
//! ```no_run
//! use std::sync::Arc;
//! use chunkswarm_core::driver::{driver, DriverConfig, DriverIo, TorrentSpec};
//! use chunkswarm_core::native::{
//!     tracker_link, DiskStore, HttpWebSeed, TokioSleeper, WebRtcConfig, WebRtcConnector,
//! };
//! # async fn run(meta: chunkswarm_core::metainfo::Metainfo) -> Result<(), Box<dyn std::error::Error>> {
//! let io = DriverIo {
//!     // Connects in the background and reconnects whenever the tracker drops.
//!     signaling: Some(tracker_link("wss://tracker.example/announce")),
//!     connector: Some(Arc::new(WebRtcConnector::new(WebRtcConfig::default()))),
//!     sleeper: Arc::new(TokioSleeper),
//! };
//! // The default draws a random peer id.
//! let (handle, driver_future) = driver(DriverConfig::default(), io);
//! tokio::spawn(driver_future);
//! // `DiskStore::open` blocks (it creates the files): fine for one file.
//! let store = Arc::new(DiskStore::open("film.webm", meta.info())?);
//! let mut spec = TorrentSpec::new(meta.info().clone(), store);
//! if let Some(url) = meta.web_seeds().first() {
//!     let timeout = std::time::Duration::from_secs(30);
//!     spec = spec.with_origin(Arc::new(HttpWebSeed::for_torrent(url, meta.info(), timeout)?));
//! }
//! handle.add_torrent(spec).await?;
//! # Ok(()) }
//! ```
//!
//! Network rule: tests use [`WebRtcConfig::loopback`] (UDP on 127.0.0.1, no
//! mDNS, no ICE servers); deployments give their tracker ICE servers to hand
//! out (its TURN credentials reach the connector through the driver, see
//! [`WebRtcConfig::ice_from_tracker`]) or set [`WebRtcConfig::ice_servers`].

mod disk_store;
mod http;
mod runtime;
mod tracker;
mod webrtc;

use std::time::Duration;

use crate::driver::{BoxFuture, Sleeper};

pub use crate::driver::IceServer;
pub use disk_store::{DEFAULT_MAX_OPEN_FILES, DiskStore};
pub use http::{HttpWebSeed, WebSeedError, http_get};
pub use tracker::{TRACKER_CONNECT_TIMEOUT, connect_tracker, tracker_link, tracker_link_to};
pub use webrtc::{WebRtcConfig, WebRtcConnector};

/// A seed for [`DriverConfig::seeded`](crate::driver::DriverConfig::seeded)
/// from the process's entropy: std's randomly keyed hasher, the clock and
/// the process id.
pub fn entropy_seed() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(since) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(since.as_nanos());
    }
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Sleeps with tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
