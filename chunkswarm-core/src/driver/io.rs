//! The small I/O traits an adapter implements for the [driver](super).
//!
//! Each trait is one kind of outside world: the tracker ([`Signaling`]), the
//! WebRTC stack ([`PeerConnector`], [`PendingConnection`], [`PeerChannel`]),
//! the web seed ([`HttpOrigin`]) and storage ([`PieceStore`]). Incoming
//! events arrive as streams ([`EventStream`]) so the driver can wait on all of
//! them at once without a runtime. On wasm32 nothing needs to be `Send`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::ice::IceGrant;
use super::signal::{SignalIn, SignalOut};
use super::{BoxFuture, EventStream, MaybeSend};
use crate::layout::PieceIndex;
use crate::metainfo::Info;
use crate::piece_map::Bitfield;

/// The tracker connection: messages out, and [`SignalIn`] messages in through
/// [`SignalingLink::events`].
pub trait Signaling: MaybeSend + fmt::Debug {
    /// Queues one message to the tracker behind earlier ones and returns at
    /// once (a WebSocket `send`).
    fn send(&self, message: SignalOut) -> Result<(), SignalingError>;
}

/// Why a message could not be sent to the tracker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignalingError {
    /// The tracker connection is closed.
    #[error("tracker connection closed")]
    Closed,
    /// Any other transport failure.
    #[error("tracker connection failed: {0}")]
    Transport(String),
}

/// A connected tracker: the sending half and the incoming messages. The
/// stream ends when the connection closes for good.
pub struct SignalingLink {
    /// Sends messages.
    pub sender: Arc<dyn Signaling>,
    /// Messages from the tracker, already parsed.
    pub events: EventStream<SignalIn>,
}

impl fmt::Debug for SignalingLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalingLink")
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// Makes WebRTC connections with non-trickle offers and answers: every SDP
/// it returns already holds all its ICE candidates.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PeerConnector: MaybeSend + fmt::Debug {
    /// Starts a connection with one data channel and returns its offer SDP.
    async fn create_offer(&self) -> Result<Offered, ConnectError>;
    /// Answers a remote offer SDP and returns the answer SDP.
    async fn accept_offer(&self, offer_sdp: &str) -> Result<Offered, ConnectError>;
    /// ICE servers from the tracker (each announce reply may carry fresh
    /// credentials): connections made from now on use them, unless the
    /// connector was told its own; open connections keep theirs. The
    /// default ignores them.
    fn set_ice_servers(&self, grant: &IceGrant) {
        let _ = grant;
    }
}

/// A connection waiting for the other side, with our SDP to send it.
pub struct Offered {
    /// Our session description (offer or answer), candidates included.
    pub sdp: String,
    /// Completes the connection.
    pub pending: Box<dyn PendingConnection>,
}

impl fmt::Debug for Offered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offered")
            .field("sdp_len", &self.sdp.len())
            .finish_non_exhaustive()
    }
}

/// A connection that is not open yet. Dropping it abandons the connection.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PendingConnection: MaybeSend {
    /// Applies the remote answer (`Some` for a connection we offered, `None`
    /// for one we answered) and waits until its data channel is open. The
    /// caller bounds the wait.
    async fn open(self: Box<Self>, answer_sdp: Option<String>)
    -> Result<PeerChannel, ConnectError>;
}

/// Why a WebRTC connection could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The remote SDP was not usable.
    #[error("bad session description: {0}")]
    BadSdp(String),
    /// ICE, DTLS or SCTP failed, or the channel closed before opening.
    #[error("connection failed: {0}")]
    Failed(String),
}

/// The sending half of an open data channel.
pub trait ChannelSender: MaybeSend + fmt::Debug {
    /// Queues bytes behind everything sent before and returns at once. The
    /// channel reports [`ChannelEvent::Writable`] when its buffer crosses the
    /// high- and low-water marks.
    fn send(&self, data: Bytes) -> Result<(), ChannelClosed>;
    /// Closes the channel and its connection; its event stream then ends.
    fn close(&self);
}

/// The channel is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("channel closed")]
pub struct ChannelClosed;

/// Something that happened on an open data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Bytes from the peer, in order, split anywhere.
    Data(Bytes),
    /// The send buffer went above the high-water mark (`false`) or back
    /// below the low-water mark (`true`).
    Writable(bool),
}

/// An open data channel: a reliable, ordered byte stream. The event stream
/// ends when the channel closes.
pub struct PeerChannel {
    /// Sends bytes.
    pub sender: Box<dyn ChannelSender>,
    /// What arrives.
    pub events: EventStream<ChannelEvent>,
}

impl fmt::Debug for PeerChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerChannel")
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// The web seed: byte ranges of the content over HTTP.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait HttpOrigin: MaybeSend + fmt::Debug {
    /// GETs `range` (end exclusive) of the content; the body must be exactly
    /// that long.
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, HttpError>;
}

/// Why a range request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The server answered with an unexpected status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body was not the range asked for.
    #[error("wrong body length: expected {expected}, got {got}")]
    Length {
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// Connecting, TLS, or reading failed.
    #[error("HTTP transport: {0}")]
    Transport(String),
}

/// Where verified pieces are kept.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait PieceStore: MaybeSend + fmt::Debug {
    /// Which pieces the store holds and that match their hashes in `info`.
    /// A store that persists re-verifies here, so a restart resumes.
    async fn verified(&self, info: &Info) -> Result<Bitfield, StoreError>;
    /// Reads a piece written before.
    async fn read(&self, piece: PieceIndex) -> Result<Bytes, StoreError>;
    /// Writes a verified piece.
    async fn write(&self, piece: PieceIndex, data: Bytes) -> Result<(), StoreError>;
}

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The piece is not in the store.
    #[error("piece {0} is not stored")]
    Missing(u32),
    /// The piece index or length does not fit the torrent.
    #[error("piece {0} does not fit the torrent")]
    OutOfRange(u32),
    /// The storage failed.
    #[error("storage: {0}")]
    Io(String),
}

/// Sleeps, so the driver needs no runtime: tokio's sleep natively, a
/// `setTimeout` promise in the browser.
pub trait Sleeper: MaybeSend + fmt::Debug {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}
