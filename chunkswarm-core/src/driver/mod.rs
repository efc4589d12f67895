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
//! tagged with their torrent). A torrent known only by its infohash (a
//! magnet link) first runs a [`MetadataFetch`](crate::metadata_fetch::MetadataFetch)
//! in place of its swarm, over the same announces, offers and channels
//! ([`Handle::fetch_metadata`]); once its dictionary is in, the torrent
//! waits with those channels open until [`Handle::add_torrent`] starts the
//! download on them, without connecting again or announcing `started` twice.
//!
//! # A state machine and its shell
//!
//! Inside, the driver is sans-IO like the [swarm](crate::swarm): a state
//! machine (every torrent's swarm, the tracker protocol, offers, answers,
//! glare, connection attempts, announce timing and backoff) that takes
//! `now` as an argument and answers with actions, and a thin shell that
//! both adapters run. The shell, written with `futures` alone, repeats:
//!
//! 1. read the clock, run what is due in the machine, and carry out every
//!    action it queued (sends to channels and to the tracker; HTTP
//!    fetches, store operations and WebRTC steps started as futures;
//!    events to subscribers);
//! 2. sleep until the machine's next deadline, through the injected
//!    [`Sleeper`];
//! 3. wait for whichever comes first: a handle command, a tracker message,
//!    a channel event, a finished future, or the sleep, and feed it to the
//!    machine with the current time.
//!
//! The machine is tested in virtual time with a fake tracker, connector and
//! channels (offer and answer, glare, tracker drop and reconnection, peer
//! churn, refusals, timeouts), without WebRTC.
//!
//! Policy that every adapter's tracker link follows lives here once:
//! [`reconnect`] (when to connect again, what becomes of messages sent
//! while the link is down), and [`signal`] with
//! [`tracker_protocol`](crate::tracker_protocol) (the messages).
//!
//! Nothing here blocks or spawns. The future ends after [`Handle::shutdown`]
//! (announcing `stopped` and closing every channel) or when every handle is
//! dropped. Network faults become engine inputs (a closed channel, a failed
//! range) and are logged with `tracing`; they never end the loop.

mod action;
mod announce;
mod carry;
mod config;
mod engine;
mod handle;
mod handover;
pub mod ice;
pub mod io;
mod machine;
mod memory_store;
mod outputs;
pub mod reconnect;
mod run;
pub mod signal;
mod torrent;

#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

use futures::Stream;

pub use announce::{REINTRODUCE_EVERY, offers_wanted};
pub use config::DriverConfig;
pub use handle::{
    AddTorrentError, DriverClosed, DriverEvent, FetchMetadataError, Handle, TorrentSpec,
};
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
