//! What JavaScript sees: events, stats and peer rows as plain objects, and
//! the piece-state codes of [`Torrent.pieceStates()`](crate#javascript-api).
//!
//! Everything here is target-independent so it is tested natively; the
//! wasm32 half turns these values into JS objects with `serde-wasm-bindgen`.
//! Byte counts and rates are `f64`: they become JS numbers.

use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::swarm::{BanReason, Event, PeerSnapshot, PieceState, Source, Stats};
use serde::Serialize;

use crate::peer_id::display_peer_id;

/// A piece neither held nor being fetched.
pub const PIECE_MISSING: u8 = 0;
/// A piece being fetched from a peer.
pub const PIECE_REQUESTED_PEER: u8 = 1;
/// A piece being fetched from the web seed.
pub const PIECE_REQUESTED_HTTP: u8 = 2;
/// A verified piece that came (mostly) from peers.
pub const PIECE_VERIFIED_PEER: u8 = 3;
/// A verified piece that came from the web seed.
pub const PIECE_VERIFIED_HTTP: u8 = 4;

/// The code of a piece state in `pieceStates()`.
pub fn piece_code(state: PieceState) -> u8 {
    match state {
        PieceState::Missing => PIECE_MISSING,
        PieceState::Requested(Source::Peer(_)) => PIECE_REQUESTED_PEER,
        PieceState::Requested(Source::Http) => PIECE_REQUESTED_HTTP,
        PieceState::Verified(Source::Peer(_)) => PIECE_VERIFIED_PEER,
        PieceState::Verified(Source::Http) => PIECE_VERIFIED_HTTP,
    }
}

/// A torrent's counters and rates (`Stats` in TypeScript).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct StatsView {
    pub total_bytes: f64,
    pub verified_bytes: f64,
    pub pieces_verified: u32,
    pub pieces_total: u32,
    pub p2p_bytes: f64,
    pub http_bytes: f64,
    pub http_bytes_received: f64,
    pub wasted_bytes: f64,
    pub uploaded_bytes: f64,
    pub p2p_rate: f64,
    pub http_rate: f64,
    pub upload_rate: f64,
    pub peers: f64,
    pub banned: f64,
    pub hash_failures: u32,
}

impl From<&Stats> for StatsView {
    fn from(s: &Stats) -> Self {
        Self {
            total_bytes: s.total_bytes as f64,
            verified_bytes: s.verified_bytes as f64,
            pieces_verified: s.pieces_verified,
            pieces_total: s.pieces_total,
            p2p_bytes: s.p2p_bytes as f64,
            http_bytes: s.http_bytes as f64,
            http_bytes_received: s.http_bytes_received as f64,
            wasted_bytes: s.wasted_bytes as f64,
            uploaded_bytes: s.uploaded_bytes as f64,
            p2p_rate: s.p2p_rate,
            http_rate: s.http_rate,
            upload_rate: s.upload_rate,
            peers: s.peers as f64,
            banned: s.banned as f64,
            hash_failures: s.hash_failures,
        }
    }
}

/// One row of the peer list (`PeerInfo` in TypeScript).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct PeerView {
    pub key: f64,
    pub peer_id: Option<String>,
    pub pieces: u32,
    pub is_seed: bool,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    pub requests_out: f64,
    pub requests_in: f64,
    pub playhead: Option<f64>,
    pub downloaded: f64,
    pub uploaded: f64,
    pub download_rate: f64,
    pub upload_rate: f64,
}

impl From<&PeerSnapshot> for PeerView {
    fn from(p: &PeerSnapshot) -> Self {
        Self {
            key: p.peer.0 as f64,
            peer_id: p.peer_id.as_ref().map(display_peer_id),
            pieces: p.pieces,
            is_seed: p.is_seed,
            am_choking: p.am_choking,
            am_interested: p.am_interested,
            peer_choking: p.peer_choking,
            peer_interested: p.peer_interested,
            requests_out: p.requests_out as f64,
            requests_in: p.requests_in as f64,
            playhead: p.playhead.map(|offset| offset as f64),
            downloaded: p.downloaded as f64,
            uploaded: p.uploaded as f64,
            download_rate: p.download_rate,
            upload_rate: p.upload_rate,
        }
    }
}

/// How loud a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// An event as listeners receive it (`ClientEvent` in TypeScript).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[allow(missing_docs)]
pub enum ClientEvent {
    Piece {
        info_hash: String,
        piece: u32,
        state: &'static str,
        source: Option<&'static str>,
        peer: Option<f64>,
    },
    Peer {
        info_hash: String,
        state: &'static str,
        peer: f64,
        peer_id: Option<String>,
        reason: Option<String>,
    },
    Progress {
        info_hash: String,
        stats: StatsView,
    },
    HashFailed {
        info_hash: String,
        piece: u32,
    },
    HttpFailed {
        info_hash: String,
        piece: u32,
        error: String,
    },
    Done {
        info_hash: String,
    },
    /// Where the torrent's pieces are kept, and what happened to the storage.
    Storage {
        info_hash: String,
        /// `opfs` or `memory`.
        store: &'static str,
        /// `ready` (pieces are being kept), `full` (the quota or disk is
        /// full: the torrent is paused) or `failed` (a write failed: paused).
        state: &'static str,
        /// Why the store was chosen or stopped: `null` when all is well.
        reason: Option<String>,
        /// Pieces found stored and verified again when the torrent was added.
        resumed_pieces: u32,
        resumed_bytes: f64,
    },
    Log {
        info_hash: Option<String>,
        level: LogLevel,
        message: String,
    },
}

impl ClientEvent {
    /// The engine event of torrent `info_hash` as JavaScript sees it.
    pub fn from_engine(info_hash: InfoHash, event: &Event) -> Self {
        let info_hash = info_hash.to_hex();
        match event {
            Event::Piece { piece, state } => {
                let (name, source) = match state {
                    PieceState::Missing => ("missing", None),
                    PieceState::Requested(s) => ("requested", Some(*s)),
                    PieceState::Verified(s) => ("verified", Some(*s)),
                };
                Self::Piece {
                    info_hash,
                    piece: piece.get(),
                    state: name,
                    source: source.map(|s| match s {
                        Source::Peer(_) => "peer",
                        Source::Http => "http",
                    }),
                    peer: source.and_then(|s| match s {
                        Source::Peer(key) => Some(key.0 as f64),
                        Source::Http => None,
                    }),
                }
            }
            Event::PeerConnected { peer, peer_id } => Self::Peer {
                info_hash,
                state: "connected",
                peer: peer.0 as f64,
                peer_id: Some(display_peer_id(peer_id)),
                reason: None,
            },
            Event::PeerDisconnected { peer, reason } => Self::Peer {
                info_hash,
                state: "disconnected",
                peer: peer.0 as f64,
                peer_id: None,
                reason: Some(reason.to_string()),
            },
            Event::PeerBanned {
                peer,
                peer_id,
                reason,
            } => Self::Peer {
                info_hash,
                state: "banned",
                peer: peer.0 as f64,
                peer_id: Some(display_peer_id(peer_id)),
                reason: Some(
                    match reason {
                        BanReason::SoleSourceOfBadPiece => "sole source of a bad piece",
                        BanReason::BadBlock => "sent a bad block",
                    }
                    .to_owned(),
                ),
            },
            Event::HashFailed { piece, .. } => Self::HashFailed {
                info_hash,
                piece: piece.get(),
            },
            Event::HttpFailed { piece, error } => Self::HttpFailed {
                info_hash,
                piece: piece.get(),
                error: error.to_string(),
            },
            Event::Progress(stats) => Self::Progress {
                info_hash,
                stats: StatsView::from(stats),
            },
            Event::Completed => Self::Done { info_hash },
            Event::StoreFailed {
                piece: Some(piece),
                error,
            } => Self::Log {
                info_hash: Some(info_hash),
                level: LogLevel::Warn,
                message: format!(
                    "piece {} could not be stored ({error}); the torrent is paused, the piece kept in memory: resume to write it again",
                    piece.get()
                ),
            },
            Event::StoreFailed { piece: None, error } => Self::Log {
                info_hash: Some(info_hash),
                level: LogLevel::Warn,
                message: format!(
                    "the stored pieces could not be flushed ({error}); the torrent is paused: resume to try again"
                ),
            },
            Event::TrackerConnected => Self::Log {
                info_hash: Some(info_hash),
                level: LogLevel::Info,
                message: "tracker connected".to_owned(),
            },
            Event::TrackerFailed { error } => Self::Log {
                info_hash: Some(info_hash),
                level: LogLevel::Warn,
                message: error.to_string(),
            },
            Event::OriginGone { error } => Self::Log {
                info_hash: Some(info_hash),
                level: LogLevel::Warn,
                message: format!("the web seed keeps answering {error}: it is asked no more"),
            },
            Event::NoSourceLeft { origin } => Self::Log {
                info_hash: Some(info_hash),
                level: LogLevel::Error,
                message: match origin {
                    Some(error) => format!(
                        "no source left: no peer, and the web seed is gone ({error}); waiting for peers"
                    ),
                    None => "no source left: no peer and no web seed; waiting for peers".to_owned(),
                },
            },
            // A connection that never opened has no key: -1.
            Event::ConnectFailed {
                peer_id,
                error,
                retry_in,
            } => Self::Peer {
                info_hash,
                state: "failed",
                peer: -1.0,
                peer_id: Some(display_peer_id(peer_id)),
                reason: Some(format!(
                    "{error}; announcing again in {} s",
                    retry_in.as_secs()
                )),
            },
        }
    }

    /// The torrent the event is about, as lowercase hex; `None` for client-wide logs.
    pub fn info_hash(&self) -> Option<&str> {
        match self {
            Self::Piece { info_hash, .. }
            | Self::Peer { info_hash, .. }
            | Self::Progress { info_hash, .. }
            | Self::HashFailed { info_hash, .. }
            | Self::HttpFailed { info_hash, .. }
            | Self::Done { info_hash }
            | Self::Storage { info_hash, .. } => Some(info_hash),
            Self::Log { info_hash, .. } => info_hash.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chunkswarm_core::driver::HttpError;
    use chunkswarm_core::layout::Layout;
    use chunkswarm_core::swarm::{CloseReason, PeerKey};

    #[test]
    fn piece_events_carry_state_source_and_peer() {
        let hash = InfoHash::new([0xab; 20]);
        let piece = Layout::new(100, 10).unwrap().piece(3).unwrap();
        let event = Event::Piece {
            piece,
            state: PieceState::Verified(Source::Peer(PeerKey(7))),
        };
        let json = serde_json::to_value(ClientEvent::from_engine(hash, &event)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "piece", "infoHash": "ab".repeat(20), "piece": 3,
                "state": "verified", "source": "peer", "peer": 7.0})
        );
        let event = Event::Piece {
            piece,
            state: PieceState::Requested(Source::Http),
        };
        let json = serde_json::to_value(ClientEvent::from_engine(hash, &event)).unwrap();
        assert_eq!(json["source"], "http");
        assert!(json["peer"].is_null());
        assert_eq!(piece_code(PieceState::Requested(Source::Http)), 2);
    }

    #[test]
    fn other_events_use_the_documented_names() {
        let hash = InfoHash::new([1; 20]);
        let piece = Layout::new(100, 10).unwrap().piece(0).unwrap();
        let cases = [
            (
                Event::HashFailed {
                    piece,
                    sources: vec![],
                },
                "hashFailed",
            ),
            (
                Event::HttpFailed {
                    piece,
                    error: HttpError::Status(503),
                },
                "httpFailed",
            ),
            (Event::Completed, "done"),
            (Event::Progress(Stats::default()), "progress"),
            (
                Event::PeerDisconnected {
                    peer: PeerKey(1),
                    reason: CloseReason::Remote,
                },
                "peer",
            ),
        ];
        for (event, name) in cases {
            let json = serde_json::to_value(ClientEvent::from_engine(hash, &event)).unwrap();
            assert_eq!(json["type"], name);
            assert_eq!(json["infoHash"], "01".repeat(20));
        }
        let stats = serde_json::to_value(StatsView::from(&Stats::default())).unwrap();
        for key in [
            "totalBytes",
            "httpBytesReceived",
            "p2pRate",
            "hashFailures",
            "banned",
        ] {
            assert!(stats.get(key).is_some(), "{key}");
        }
        let log = ClientEvent::Log {
            info_hash: None,
            level: LogLevel::Warn,
            message: "m".into(),
        };
        let json = serde_json::to_value(&log).unwrap();
        assert_eq!(json["level"], "warn");
        assert!(json["infoHash"].is_null());
    }
}
