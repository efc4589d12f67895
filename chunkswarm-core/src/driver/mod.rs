//! The runtime-agnostic driver: moves bytes and time between a set of
//! [`Swarm`](crate::swarm::Swarm)s and the outside world.
//!
//! An adapter (native tokio + webrtc, or the browser) implements the small
//! traits of [`io`]: [`Signaling`] (the WebTorrent tracker), [`PeerConnector`]
//! (WebRTC connections and their data channels), [`HttpOrigin`] (the web
//! seed), [`PieceStore`] and [`Sleeper`]. [`driver`] then returns a
//! [`Handle`] and a future, in the style of matchbox: the caller spawns the
//! future (tokio, `wasm_bindgen_futures::spawn_local`, any executor) and
//! steers it through the handle: add torrents, seek, pause, read stats, and
//! subscribe to [`DriverEvent`]s (the engine's [`Event`](crate::swarm::Event)s
//! tagged with their torrent).
//!
//! # The loop
//!
//! Written with `futures` alone, it repeats:
//!
//! 1. drain every swarm's [`poll_output`](crate::swarm::Swarm::poll_output),
//!    carrying each output out (sends to channels, HTTP fetches and store
//!    operations started as futures, events to subscribers);
//! 2. sleep until the earliest [`poll_timeout`](crate::swarm::Swarm::poll_timeout)
//!    (or announce deadline), through the injected [`Sleeper`];
//! 3. wait for whichever comes first: a handle command, a tracker message,
//!    a channel event, a finished I/O future, or the sleep, and feed it to
//!    its swarm with the current time.
//!
//! Nothing here blocks or spawns. The future ends after [`Handle::shutdown`]
//! (announcing `stopped` and closing every channel) or when every handle is
//! dropped. Network faults become engine inputs (a closed channel, a failed
//! range) and are logged with `tracing`; they never end the loop.

mod action;
mod announce;
mod carry;
mod config;
mod handle;
pub mod ice;
pub mod io;
mod machine;
mod memory_store;
mod outputs;
mod run;
pub mod signal;
mod torrent;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

use futures::Stream;

pub use config::DriverConfig;
pub use handle::{AddTorrentError, DriverClosed, DriverEvent, Handle, TorrentSpec};
pub use ice::{IceGrant, IceServer};
pub use io::{
    ChannelClosed, ChannelEvent, ChannelSender, ConnectError, HttpError, HttpOrigin, Offered,
    PeerChannel, PeerConnector, PendingConnection, PieceStore, Signaling, SignalingError,
    SignalingLink, Sleeper, StoreError, TrackerError,
};
pub use memory_store::MemoryStore;
pub use run::{DriverIo, driver};

/// `Send` on native targets, nothing on wasm32 (where JS objects are not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSend for T {}

/// `Send` on native targets, nothing on wasm32 (where JS objects are not `Send`).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// A boxed future, `Send` except on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future, `Send` except on wasm32.
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A boxed stream of incoming events, `Send` except on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub type EventStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;
/// A boxed stream of incoming events, `Send` except on wasm32.
#[cfg(target_arch = "wasm32")]
pub type EventStream<T> = Pin<Box<dyn Stream<Item = T>>>;
