//! What runs a torrent inside the driver: its [`Swarm`], or, for a torrent
//! known only by its infohash (a magnet link), the [`MetadataFetch`] that
//! gets its info dictionary from peers first.
//!
//! Both speak the wire protocol over the same connections, offers and
//! announces, so the driver's bookkeeping serves both alike; what only a
//! download has (HTTP, the store, playback) is a no-op while fetching.

use bytes::Bytes;
use web_time::Instant;

use super::io::HttpError;
use crate::layout::PieceIndex;
use crate::metadata_fetch::{FetchCloseReason, FetchOutput, MetadataFetch};
use crate::metainfo::Info;
use crate::piece_map::Bitfield;
use crate::swarm::{
    CloseReason, HttpRequestId, Output, PeerKey, PeerSnapshot, Playback, Stats, Swarm, SwarmFacts,
};
use crate::wire::metadata::MetadataError;

/// A torrent's engine: see the [module docs](self).
pub(super) enum Engine {
    /// Downloading and serving the content.
    Swarm(Box<Swarm>),
    /// Fetching the info dictionary; once it is in, holding the
    /// connections for the download (parked).
    Metadata(Box<MetadataFetch>),
}

/// An engine output.
pub(super) enum EngineOutput {
    /// What a swarm asks for (a fetch's sends and closes come as these too).
    Swarm(Output),
    /// The fetch is over: the verified dictionary, or why it is unusable.
    Fetched(Result<Info, MetadataError>),
}

impl Engine {
    /// The metadata is in and the connections wait for the download.
    pub(super) fn is_parked(&self) -> bool {
        matches!(self, Self::Metadata(fetch) if fetch.is_done())
    }

    pub(super) fn poll_output(&mut self) -> Option<EngineOutput> {
        match self {
            Self::Swarm(swarm) => swarm.poll_output().map(EngineOutput::Swarm),
            Self::Metadata(fetch) => loop {
                let output = match fetch.poll_output()? {
                    FetchOutput::Send { peer, data } => Output::Send { peer, data },
                    FetchOutput::Close { peer, reason } => Output::Close {
                        peer,
                        reason: close_reason(reason),
                    },
                    FetchOutput::BadMetadata { peer_id, error } => {
                        tracing::warn!(
                            peer = %String::from_utf8_lossy(&peer_id),
                            %error,
                            "a peer sent metadata that is not the torrent's; banned"
                        );
                        continue;
                    }
                    FetchOutput::Done(info) => return Some(EngineOutput::Fetched(Ok(info))),
                    FetchOutput::Failed(error) => return Some(EngineOutput::Fetched(Err(error))),
                };
                return Some(EngineOutput::Swarm(output));
            },
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Swarm(swarm) => swarm.poll_timeout(),
            Self::Metadata(fetch) => fetch.poll_timeout(),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Swarm(swarm) => swarm.handle_timeout(now),
            Self::Metadata(fetch) => fetch.handle_timeout(now),
        }
    }

    pub(super) fn handle_peer_connected(&mut self, now: Instant, peer: PeerKey) {
        match self {
            Self::Swarm(swarm) => swarm.handle_peer_connected(now, peer),
            Self::Metadata(fetch) => fetch.handle_peer_connected(now, peer),
        }
    }

    pub(super) fn handle_peer_data(&mut self, now: Instant, peer: PeerKey, data: &[u8]) {
        match self {
            Self::Swarm(swarm) => swarm.handle_peer_data(now, peer, data),
            Self::Metadata(fetch) => fetch.handle_peer_data(now, peer, data),
        }
    }

    pub(super) fn handle_peer_closed(&mut self, now: Instant, peer: PeerKey) {
        match self {
            Self::Swarm(swarm) => swarm.handle_peer_closed(now, peer),
            Self::Metadata(fetch) => fetch.handle_peer_closed(now, peer),
        }
    }

    pub(super) fn handle_peer_writable(&mut self, now: Instant, peer: PeerKey, writable: bool) {
        if let Self::Swarm(swarm) = self {
            swarm.handle_peer_writable(now, peer, writable);
        }
    }

    pub(super) fn handle_http_response(
        &mut self,
        now: Instant,
        id: HttpRequestId,
        result: Result<Bytes, HttpError>,
    ) {
        if let Self::Swarm(swarm) = self {
            swarm.handle_http_response(now, id, result);
        }
    }

    pub(super) fn handle_piece_read(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: Option<Bytes>,
    ) {
        if let Self::Swarm(swarm) = self {
            swarm.handle_piece_read(now, piece, data);
        }
    }

    pub(super) fn set_playback(&mut self, now: Instant, playback: Option<Playback>) {
        if let Self::Swarm(swarm) = self {
            swarm.set_playback(now, playback);
        }
    }

    pub(super) fn pause(&mut self) {
        if let Self::Swarm(swarm) = self {
            swarm.pause();
        }
    }

    pub(super) fn resume(&mut self, now: Instant) {
        if let Self::Swarm(swarm) = self {
            swarm.resume(now);
        }
    }

    /// The tracker's facts about the swarm; unused while fetching the
    /// metadata.
    pub(super) fn handle_swarm_facts(&mut self, now: Instant, facts: SwarmFacts) {
        if let Self::Swarm(swarm) = self {
            swarm.handle_swarm_facts(now, facts);
        }
    }

    pub(super) fn set_upload_rate_limit(&mut self, limit: Option<u64>) {
        if let Self::Swarm(swarm) = self {
            swarm.set_upload_rate_limit(limit);
        }
    }

    /// Whether every piece is held (never while fetching the metadata).
    pub(super) fn is_complete(&self) -> bool {
        matches!(self, Self::Swarm(swarm) if swarm.is_complete())
    }

    /// The counters; all zero while fetching the metadata.
    pub(super) fn stats(&self, now: Instant) -> Stats {
        match self {
            Self::Swarm(swarm) => swarm.stats(now),
            Self::Metadata(_) => Stats::default(),
        }
    }

    /// Bytes still missing, for announces; while fetching the metadata the
    /// size is unknown, and everything is missing.
    pub(super) fn left(&self, now: Instant) -> u64 {
        match self {
            Self::Swarm(swarm) => {
                let stats = swarm.stats(now);
                stats.total_bytes.saturating_sub(stats.verified_bytes)
            }
            Self::Metadata(_) => u64::MAX,
        }
    }

    pub(super) fn peers(&self, now: Instant) -> Vec<PeerSnapshot> {
        match self {
            Self::Swarm(swarm) => swarm.peers(now),
            Self::Metadata(_) => Vec::new(),
        }
    }

    /// The pieces held, once the torrent's size is known.
    pub(super) fn have(&self) -> Option<&Bitfield> {
        match self {
            Self::Swarm(swarm) => Some(swarm.have()),
            Self::Metadata(_) => None,
        }
    }

    /// The torrent's piece length, once its metadata is known.
    pub(super) fn piece_length(&self) -> Option<u32> {
        match self {
            Self::Swarm(swarm) => Some(swarm.info().layout().piece_length()),
            Self::Metadata(_) => None,
        }
    }

    pub(super) fn playback_piece(&self) -> Option<PieceIndex> {
        match self {
            Self::Swarm(swarm) => swarm.playback_piece(),
            Self::Metadata(_) => None,
        }
    }
}

fn close_reason(reason: FetchCloseReason) -> CloseReason {
    match reason {
        FetchCloseReason::Protocol(what) => CloseReason::Protocol(what),
        FetchCloseReason::WrongTorrent => CloseReason::WrongTorrent,
        FetchCloseReason::Duplicate => CloseReason::Duplicate,
        FetchCloseReason::Banned => CloseReason::Banned,
        FetchCloseReason::NoMetadata => CloseReason::NoMetadata,
    }
}
