//! What the driver's state machine asks its shell to do.

use std::ops::Range;

use bytes::Bytes;

use super::handle::DriverEvent;
use super::ice::IceGrant;
use super::signal::{Id20, SignalOut};
use crate::layout::PieceIndex;
use crate::metainfo::{Info, InfoHash};
use crate::swarm::{HttpRequestId, PeerKey};
use crate::wire::metadata::MetadataError;

/// Names one attempt to connect to a remote peer, from the offer (ours or
/// theirs) to an open channel or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Attempt(pub(super) u64);

/// One thing for the shell to carry out; each names what the machine is
/// told back (if anything) when it is done.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Action {
    /// Send a message to the tracker.
    Signal(SignalOut),
    /// Hand an event to every subscriber.
    Publish(DriverEvent),
    /// Hand fresh ICE servers to the connector.
    SetIceServers(IceGrant),
    /// Make one offer per id, keep each pending connection under
    /// `(info_hash, id)`, then [`handle_offers_made`] with the SDPs made.
    ///
    /// [`handle_offers_made`]: super::machine::Machine::handle_offers_made
    MakeOffers { info_hash: InfoHash, ids: Vec<Id20> },
    /// Forget an offer of ours: nobody answered it in time, or it is not
    /// wanted any more.
    DropOffer { info_hash: InfoHash, offer_id: Id20 },
    /// Apply the remote's answer to our offer and open the channel, then
    /// [`handle_connected`] or [`handle_connect_failed`].
    ///
    /// [`handle_connected`]: super::machine::Machine::handle_connected
    /// [`handle_connect_failed`]: super::machine::Machine::handle_connect_failed
    OpenOffer {
        info_hash: InfoHash,
        offer_id: Id20,
        attempt: Attempt,
        answer_sdp: String,
    },
    /// Answer a remote offer, keep the pending connection under `attempt`,
    /// then [`handle_answer_made`].
    ///
    /// [`handle_answer_made`]: super::machine::Machine::handle_answer_made
    AcceptOffer { attempt: Attempt, offer_sdp: String },
    /// Open the channel of a connection we answered, then
    /// [`handle_connected`] or [`handle_connect_failed`].
    ///
    /// [`handle_connected`]: super::machine::Machine::handle_connected
    /// [`handle_connect_failed`]: super::machine::Machine::handle_connect_failed
    OpenAnswered { attempt: Attempt },
    /// Give up an attempt: drop whatever is held or under way for it.
    Abandon { attempt: Attempt },
    /// Send bytes on an open channel.
    ChannelSend { peer: PeerKey, data: Bytes },
    /// Close a channel and its connection.
    ChannelClose { peer: PeerKey },
    /// GET a range from the torrent's web seed, then `handle_http_response`.
    HttpFetch {
        info_hash: InfoHash,
        id: HttpRequestId,
        range: Range<u64>,
    },
    /// Abandon an HTTP request.
    HttpCancel {
        info_hash: InfoHash,
        id: HttpRequestId,
    },
    /// Read a piece from the store, then `handle_piece_read`.
    ReadPiece {
        info_hash: InfoHash,
        piece: PieceIndex,
    },
    /// Write a verified piece to the store, then `handle_written`.
    WritePiece {
        info_hash: InfoHash,
        piece: PieceIndex,
        data: Bytes,
    },
    /// Make the store's writes durable, then `handle_synced`.
    SyncStore { info_hash: InfoHash },
    /// The torrent is gone: drop its store, web seed and offers.
    Forget { info_hash: InfoHash },
    /// The metadata fetch of a torrent is over: hand the verified
    /// dictionary, or why it is unusable, to whoever asked. With a
    /// dictionary the torrent stays, parked, for `add_torrent` to start
    /// the download on its connections; without one a `Forget` follows.
    MetadataFetched {
        info_hash: InfoHash,
        result: Result<Info, MetadataError>,
    },
}
