//! What a swarm asks of its adapter, and what it tells the UI.

use std::ops::Range;

use bytes::Bytes;

use crate::driver::{ConnectError, HttpError, StoreError, TrackerError};
use crate::layout::PieceIndex;
use crate::piece_map::BitfieldError;
use crate::wire::extension::ExtensionError;
use crate::wire::{DecodeError, MessageId};

/// The adapter's name for one peer connection. The adapter picks it and must
/// not reuse it while the swarm knows the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub u64);

/// Names one HTTP range request the swarm asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpRequestId(pub u64);

/// Where verified bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A peer connection.
    Peer(PeerKey),
    /// The HTTP web seed.
    Http,
}

/// The state of a piece as a UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceState {
    /// Not held and not being fetched.
    Missing,
    /// Being fetched from this source (the first one asked).
    Requested(Source),
    /// Verified against its hash; the source that supplied most of it.
    Verified(Source),
}

/// Why the swarm closed a connection or dropped a peer.
///
/// Its `Display` text is a short phrase for a log or a UI ("protocol error:
/// unexpected bitfield message", "banned").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The peer broke the wire protocol; the violation says how.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolViolation),
    /// The handshake named another torrent.
    #[error("wrong torrent")]
    WrongTorrent,
    /// The peer is ourselves, or already connected under this id.
    #[error("duplicate connection")]
    Duplicate,
    /// Too many connections.
    #[error("too many peers")]
    TooManyPeers,
    /// Nothing received for too long, or too many requests failed.
    #[error("unresponsive")]
    Unresponsive,
    /// Banned for sending data that failed verification.
    #[error("banned")]
    Banned,
    /// Both sides have everything; nothing left to exchange.
    #[error("both seeds")]
    BothSeeds,
    /// The adapter reported the connection closed.
    #[error("closed by the remote or the network")]
    Remote,
    /// Asked for a torrent's metadata, the peer cannot give it: no
    /// extension protocol, no `ut_metadata`, or no usable `metadata_size`.
    #[error("offers no metadata (ut_metadata)")]
    NoMetadata,
}

/// How a peer broke the wire protocol ([`CloseReason::Protocol`]).
///
/// Every cause is the peer's doing; none is a fault of ours or of the
/// network, so a UI may count them against the peer's client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolViolation {
    /// Bytes that do not decode as the BitTorrent handshake or wire
    /// messages (a bad handshake, an unknown id, a length out of bounds).
    #[error(transparent)]
    Wire(#[from] DecodeError),
    /// A `bitfield` of the wrong length or with spare bits set.
    #[error(transparent)]
    Bitfield(#[from] BitfieldError),
    /// A malformed BEP 10 extension message (handshake, origin claim or
    /// metadata).
    #[error(transparent)]
    Extension(#[from] ExtensionError),
    /// A message the connection's state or the handshake does not allow: a
    /// second `bitfield`, `have all` without the fast extension, ...
    #[error("unexpected {0} message")]
    UnexpectedMessage(MessageId),
    /// A `have` for a piece the torrent does not have.
    #[error("have for piece {piece}, out of range")]
    HaveOutOfRange {
        /// The index the peer sent.
        piece: u32,
    },
    /// An origin claim for a piece the torrent does not have.
    #[error("origin claim for piece {piece}, out of range")]
    ClaimOutOfRange {
        /// The index the peer sent.
        piece: u32,
    },
    /// More requests queued than the limit we announced (`reqq`).
    #[error("too many outstanding requests")]
    TooManyRequests,
    /// More blocks than we tolerate that we never asked for.
    #[error("too many unrequested blocks")]
    TooManyUnrequestedBlocks,
}

/// Why a peer was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// It alone supplied a piece that failed verification.
    SoleSourceOfBadPiece,
    /// A block it supplied differs from the verified piece.
    BadBlock,
}

/// Counters and rates for a UI. Byte counts are of verified pieces unless
/// named otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    /// Length of the content.
    pub total_bytes: u64,
    /// Bytes of verified pieces we hold.
    pub verified_bytes: u64,
    /// Verified pieces held.
    pub pieces_verified: u32,
    /// Pieces in the torrent.
    pub pieces_total: u32,
    /// Verified bytes that came from peers.
    pub p2p_bytes: u64,
    /// Verified bytes that came from the HTTP origin.
    pub http_bytes: u64,
    /// Bytes received from the origin, wasted ones included.
    pub http_bytes_received: u64,
    /// Bytes received that were thrown away: failed pieces, duplicates, unrequested.
    pub wasted_bytes: u64,
    /// Piece data sent to peers.
    pub uploaded_bytes: u64,
    /// Download rate from peers, bytes per second.
    pub p2p_rate: f64,
    /// Download rate from the origin, bytes per second.
    pub http_rate: f64,
    /// Upload rate, bytes per second.
    pub upload_rate: f64,
    /// Connected peers past the handshake.
    pub peers: usize,
    /// Peers banned so far.
    pub banned: usize,
    /// Pieces that failed verification so far.
    pub hash_failures: u32,
    /// Fetches sent to the origin so far, by why.
    pub origin_fetches: OriginFetches,
}

/// Fetches sent to the origin, by the reason the engine paid for each
/// (see [`HttpConfig`](super::HttpConfig) for when each applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OriginFetches {
    /// The fast start: the first piece, or the playhead's.
    pub fast_start: u32,
    /// A playback deadline peers would have missed.
    pub deadline: u32,
    /// A piece whose peer attempts ran out.
    pub retries_exhausted: u32,
    /// A piece no connected peer held, or none would serve.
    pub no_peer_source: u32,
}

/// One connection as a UI's peer list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSnapshot {
    /// The connection.
    pub peer: PeerKey,
    /// Its peer id, once the handshake is done.
    pub peer_id: Option<[u8; 20]>,
    /// Pieces it holds.
    pub pieces: u32,
    /// It holds every piece.
    pub is_seed: bool,
    /// We refuse its requests.
    pub am_choking: bool,
    /// We want pieces it has.
    pub am_interested: bool,
    /// It refuses our requests.
    pub peer_choking: bool,
    /// It wants pieces we have.
    pub peer_interested: bool,
    /// Block requests we have outstanding to it.
    pub requests_out: usize,
    /// Block requests it has queued with us, not yet sent.
    pub requests_in: usize,
    /// Where its playback is now, as a content offset: its last
    /// `cs_playhead` report moved on at its bitrate. `None` while it does
    /// not play or never said (WebTorrent peers).
    pub playhead: Option<u64>,
    /// Block bytes received from it.
    pub downloaded: u64,
    /// Block bytes sent to it.
    pub uploaded: u64,
    /// Download rate from it, bytes per second.
    pub download_rate: f64,
    /// Upload rate to it, bytes per second.
    pub upload_rate: f64,
}

/// Something a UI may show.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A peer completed the handshake.
    PeerConnected {
        /// The connection.
        peer: PeerKey,
        /// Its 20-byte peer id.
        peer_id: [u8; 20],
    },
    /// A peer is gone.
    PeerDisconnected {
        /// The connection.
        peer: PeerKey,
        /// Why.
        reason: CloseReason,
    },
    /// A peer was banned and disconnected; its id is refused from now on.
    PeerBanned {
        /// The connection.
        peer: PeerKey,
        /// Its peer id.
        peer_id: [u8; 20],
        /// Why.
        reason: BanReason,
    },
    /// A piece changed state.
    Piece {
        /// The piece.
        piece: PieceIndex,
        /// Its new state.
        state: PieceState,
    },
    /// A piece failed verification and will be fetched again.
    HashFailed {
        /// The piece.
        piece: PieceIndex,
        /// The sources that supplied its blocks.
        sources: Vec<Source>,
    },
    /// An HTTP range request failed; it will be retried after a backoff.
    HttpFailed {
        /// The piece it was for.
        piece: PieceIndex,
        /// What went wrong.
        error: HttpError,
    },
    /// The web seed answered [`HttpConfig::gone_after`](super::HttpConfig::gone_after)
    /// times, with no success between, that asking again cannot help (404,
    /// 410, ...: [`HttpError::is_permanent`]). The swarm asks it no more.
    OriginGone {
        /// The last such answer.
        error: HttpError,
    },
    /// The torrent is incomplete and has had no source for
    /// [`SwarmConfig::no_source_timeout`](super::SwarmConfig::no_source_timeout):
    /// no peer connected, and no web seed to use (none, turned off, or
    /// [gone](Self::OriginGone)). Sent once per such stretch, not while
    /// paused. Nothing is given up: a peer that connects later (the tracker
    /// may still introduce one) serves the download.
    NoSourceLeft {
        /// Why the web seed is of no use: `None` when the torrent has none
        /// or HTTP is turned off, else the answer that made it
        /// [gone](Self::OriginGone).
        origin: Option<HttpError>,
    },
    /// Periodic counters and rates, at most once per tick while anything changes.
    Progress(Stats),
    /// Every piece is verified. Through the [driver](crate::driver) it
    /// comes later: once every piece is also written to the store and the
    /// store is flushed ([`PieceStore::sync`](crate::driver::PieceStore::sync)),
    /// so the content reads back whole as soon as it is heard.
    Completed,
    /// A connection to a peer the tracker introduced could not be opened
    /// (ICE, DTLS or SCTP failed, or it timed out) and was closed. Sent by
    /// the [driver](crate::driver), never by the swarm: it announces again
    /// after `retry_in`, with fresh offers, so the tracker can introduce the
    /// peers again (a peer reachable only through TURN is retried once
    /// credentials arrive or the relay is back).
    ConnectFailed {
        /// The remote's tracker peer id.
        peer_id: [u8; 20],
        /// What failed.
        error: ConnectError,
        /// When the driver announces again for new connections.
        retry_in: std::time::Duration,
    },
    /// The store refused a verified piece (a full disk, say). Sent by the
    /// [driver](crate::driver), never by the swarm: the piece stays in
    /// memory, still served to peers and to reads, the torrent is paused,
    /// and resuming it writes the piece again. `Completed` waits until
    /// every piece is in the store.
    StoreFailed {
        /// The piece refused, or `None` when flushing the written pieces
        /// to the device failed (resuming flushes again).
        piece: Option<PieceIndex>,
        /// What the store said ([`StoreError::kind`] gives the
        /// [`io::ErrorKind`](std::io::ErrorKind)).
        error: StoreError,
    },
    /// The tracker connection is up: announces and offers go out. Sent by
    /// the [driver](crate::driver) for each of its torrents when the
    /// connection opens, never by the swarm.
    TrackerConnected,
    /// The tracker cannot be reached, was lost, or refused a message of
    /// this torrent. Sent by the [driver](crate::driver), never by the
    /// swarm. The download goes on from the web seed and the peers already
    /// connected; the adapter keeps reconnecting, and
    /// [`TrackerConnected`](Self::TrackerConnected) follows when it is back.
    TrackerFailed {
        /// What went wrong.
        error: TrackerError,
    },
}

/// What the adapter must do next, from [`Swarm::poll_output`](super::Swarm::poll_output).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Write these bytes to the peer's channel, after everything sent before.
    Send {
        /// The connection.
        peer: PeerKey,
        /// Wire bytes.
        data: Bytes,
    },
    /// Close the connection. The swarm has already forgotten it; do not
    /// report it back with `handle_peer_closed`.
    Close {
        /// The connection.
        peer: PeerKey,
        /// Why.
        reason: CloseReason,
    },
    /// GET this byte range of the content from the web seed and hand the body
    /// to [`Swarm::handle_http_response`](super::Swarm::handle_http_response).
    HttpFetch {
        /// Names the request in the response.
        id: HttpRequestId,
        /// Content bytes wanted, end exclusive.
        range: Range<u64>,
    },
    /// Abort this HTTP request; a late response is ignored anyway.
    HttpCancel {
        /// The request.
        id: HttpRequestId,
    },
    /// Persist this verified piece.
    StorePiece {
        /// The piece.
        piece: PieceIndex,
        /// Its bytes, already verified.
        data: Bytes,
    },
    /// Read this verified piece from the store and hand it to
    /// [`Swarm::handle_piece_read`](super::Swarm::handle_piece_read) so it can be served.
    ReadPiece {
        /// The piece.
        piece: PieceIndex,
    },
    /// Something for the UI.
    Event(Event),
}
