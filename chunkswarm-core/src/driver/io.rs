//! The small I/O traits an adapter implements for the [driver](super).
//!
//! Each trait is one kind of outside world: the tracker ([`Signaling`]), the
//! WebRTC stack ([`PeerConnector`], [`PendingConnection`], [`PeerChannel`]),
//! the web seed ([`HttpOrigin`]) and storage ([`PieceStore`]). Incoming
//! events arrive as streams ([`EventStream`]) so the driver can wait on all of
//! them at once without a runtime. On wasm32 nothing needs to be `Send`.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
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

/// Why the tracker is not serving this torrent, as
/// [`Event::TrackerFailed`](crate::swarm::Event::TrackerFailed) reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    /// Connecting failed: DNS, TCP, TLS or the WebSocket handshake (a
    /// refused connection, an unknown host, a server that is no tracker).
    #[error("cannot reach the tracker at {url}: {reason}")]
    Unreachable {
        /// The tracker.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Connecting took longer than the adapter's bound (for the native
    /// adapter, [`TRACKER_CONNECT_TIMEOUT`](crate::native::TRACKER_CONNECT_TIMEOUT)
    /// unless told otherwise).
    #[error("the tracker at {url} did not answer within {after:?}")]
    TimedOut {
        /// The tracker.
        url: String,
        /// The bound.
        after: Duration,
    },
    /// An open connection broke or was closed by the tracker.
    #[error("lost the connection to the tracker at {url}")]
    Lost {
        /// The tracker.
        url: String,
    },
    /// The tracker answered with a `failure reason` (or a `warning
    /// message`) for this torrent.
    #[error("the tracker refused: {reason}")]
    Refused {
        /// The tracker's text.
        reason: String,
    },
    /// The torrent names no WebSocket (`ws://`, `wss://`) tracker, and none
    /// was given: peers are met through no tracker.
    #[error("no WebSocket tracker for this torrent")]
    NoTracker,
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The remote SDP was not usable.
    #[error("bad session description: {0}")]
    BadSdp(String),
    /// ICE, DTLS or SCTP failed, or the channel closed before opening.
    #[error("connection failed: {0}")]
    Failed(String),
    /// The connection did not open within the driver's
    /// [`connect_timeout`](super::DriverConfig::connect_timeout).
    #[error("connection did not open within {0:?}")]
    TimedOut(Duration),
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// The torrent has no web seed to ask.
    #[error("no web seed")]
    NoWebSeed,
    /// No answer within the engine's deadline for a range request.
    #[error("HTTP request timed out")]
    TimedOut,
}

impl HttpError {
    /// Whether asking again cannot help: the torrent has no web seed, or
    /// the server's status says the content is not there or not for us
    /// (4xx, except 408 Request Timeout and 429 Too Many Requests).
    /// Transport failures, timeouts, 5xx and wrong lengths may pass.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Status(status) => (400..500).contains(status) && !matches!(status, 408 | 429),
            Self::NoWebSeed => true,
            Self::Length { .. } | Self::Transport(_) | Self::TimedOut => false,
        }
    }
}

impl From<String> for HttpError {
    /// A transport failure described by `message`.
    fn from(message: String) -> Self {
        Self::Transport(message)
    }
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
    /// Makes every piece written so far durable (a disk store flushes its
    /// files to the device). The driver calls it once the last piece is
    /// written, before it reports `Completed`. The default does nothing, for
    /// stores that do not persist.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
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
    /// The storage failed; [`StoreError::kind`] tells how (a full disk is
    /// [`io::ErrorKind::StorageFull`]).
    #[error("storage{}: {error}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Io {
        /// The file, when the store has one.
        path: Option<PathBuf>,
        /// What the operating system (or the browser) said.
        #[source]
        error: Arc<io::Error>,
    },
}

impl StoreError {
    /// An I/O failure, without a file to name.
    pub fn io(error: io::Error) -> Self {
        Self::Io {
            path: None,
            error: Arc::new(error),
        }
    }

    /// An I/O failure on the file at `path`.
    pub fn io_at(path: impl Into<PathBuf>, error: io::Error) -> Self {
        Self::Io {
            path: Some(path.into()),
            error: Arc::new(error),
        }
    }

    /// The kind of I/O failure; `None` for the other variants.
    pub fn kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { error, .. } => Some(error.kind()),
            Self::Missing(_) | Self::OutOfRange(_) => None,
        }
    }
}

impl PartialEq for StoreError {
    /// Equal variants; I/O failures compare by path and kind.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Missing(a), Self::Missing(b)) | (Self::OutOfRange(a), Self::OutOfRange(b)) => {
                a == b
            }
            (Self::Io { path: a, error: x }, Self::Io { path: b, error: y }) => {
                a == b && x.kind() == y.kind()
            }
            _ => false,
        }
    }
}

/// Sleeps, so the driver needs no runtime: tokio's sleep natively, a
/// `setTimeout` promise in the browser.
pub trait Sleeper: MaybeSend + fmt::Debug {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}
