//! The state machine's side of a swarm's outputs and of the store: turning
//! engine outputs into [`Action`]s and feeding their outcomes back.

use bytes::Bytes;
use web_time::Instant;

use super::action::Action;
use super::engine::EngineOutput;
use super::io::{HttpError, StoreError};
use super::machine::Machine;
use super::signal::SignalOut;
use crate::layout::PieceIndex;
use crate::metainfo::InfoHash;
use crate::swarm::{Event, HttpRequestId, Output, PieceState};

impl Machine {
    /// Drains the torrent's outputs until there are none.
    pub(super) fn drain(&mut self, now: Instant, info_hash: InfoHash) {
        loop {
            let Some(torrent) = self.torrents.get_mut(&info_hash) else {
                return;
            };
            let output = match torrent.engine.poll_output() {
                None => break,
                Some(EngineOutput::Swarm(output)) => output,
                Some(EngineOutput::Fetched(Ok(info))) => {
                    // Parked: its connections wait for `add_torrent`.
                    tracing::info!(%info_hash, peers = torrent.channels.len(), "metadata fetched; connections kept for the download");
                    let result = Ok(info);
                    self.actions
                        .push_back(Action::MetadataFetched { info_hash, result });
                    continue;
                }
                Some(EngineOutput::Fetched(result)) => {
                    self.actions
                        .push_back(Action::MetadataFetched { info_hash, result });
                    self.remove_torrent(now, info_hash);
                    return;
                }
            };
            match output {
                Output::Send { peer, data } => {
                    if torrent.channels.contains_key(&peer) {
                        self.actions.push_back(Action::ChannelSend { peer, data });
                    }
                }
                Output::Close { peer, reason } => {
                    tracing::debug!(%info_hash, peer = peer.0, ?reason, "closing channel");
                    if torrent.channels.remove(&peer).is_some() {
                        self.actions.push_back(Action::ChannelClose { peer });
                    }
                    self.peer_torrent.remove(&peer);
                }
                Output::HttpFetch { id, range } => {
                    torrent.http.insert(id);
                    self.actions.push_back(Action::HttpFetch {
                        info_hash,
                        id,
                        range,
                    });
                }
                Output::HttpCancel { id } => {
                    if torrent.http.remove(&id) {
                        self.actions.push_back(Action::HttpCancel { info_hash, id });
                    }
                }
                Output::StorePiece { piece, data } => {
                    torrent.writing.insert(piece, data.clone());
                    self.actions.push_back(Action::WritePiece {
                        info_hash,
                        piece,
                        data,
                    });
                }
                Output::ReadPiece { piece } => {
                    if let Some(data) = torrent.writing.get(&piece).cloned() {
                        torrent.engine.handle_piece_read(now, piece, Some(data));
                        continue;
                    }
                    self.actions
                        .push_back(Action::ReadPiece { info_hash, piece });
                }
                Output::Event(event) => self.event(now, info_hash, event),
            }
        }
        self.flush_haves(info_hash);
    }

    fn event(&mut self, now: Instant, info_hash: InfoHash, event: Event) {
        if let Some(torrent) = self.torrents.get_mut(&info_hash) {
            match &event {
                Event::Piece {
                    piece,
                    state: PieceState::Verified(_),
                } => torrent.new_haves.push(piece.get()),
                Event::Completed => {
                    tracing::info!(%info_hash, "download complete");
                    // Subscribers read the content when they hear it: not
                    // before every verified piece is written and flushed.
                    let writes_pending = !torrent.writing.is_empty();
                    torrent.completed_waiting = true;
                    if !torrent.completed_announced {
                        torrent.completed_announced = true;
                        self.announce_completed(now, info_hash);
                    }
                    if !writes_pending {
                        self.actions.push_back(Action::SyncStore { info_hash });
                    }
                    return;
                }
                _ => {}
            }
        }
        self.publish(info_hash, event);
    }

    /// The web seed answered a request (or failed to).
    pub(super) fn handle_http_response(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        id: HttpRequestId,
        result: Result<Bytes, HttpError>,
    ) {
        let Some(t) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if t.http.remove(&id) {
            t.engine.handle_http_response(now, id, result);
            self.drain(now, info_hash);
        }
    }

    /// The store read a piece (`None`: it could not).
    pub(super) fn handle_piece_read(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        piece: PieceIndex,
        data: Option<Bytes>,
    ) {
        if let Some(t) = self.torrents.get_mut(&info_hash) {
            t.engine.handle_piece_read(now, piece, data);
            self.drain(now, info_hash);
        }
    }

    /// The store wrote a piece, or refused it: then the torrent pauses, the
    /// piece is kept (and served) from memory, and written again on resume.
    pub(super) fn handle_written(
        &mut self,
        info_hash: InfoHash,
        piece: PieceIndex,
        result: Result<(), StoreError>,
    ) {
        let Some(t) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if let Err(error) = result {
            tracing::warn!(%info_hash, piece = piece.get(), %error, "piece write failed; torrent paused");
            t.unwritten.insert(piece);
            t.engine.pause();
            let piece = Some(piece);
            self.publish(info_hash, Event::StoreFailed { piece, error });
            return;
        }
        t.writing.remove(&piece);
        if t.writing.is_empty() && t.completed_waiting {
            self.actions.push_back(Action::SyncStore { info_hash });
        }
    }

    /// The store made every written piece durable, or failed to.
    pub(super) fn handle_synced(&mut self, info_hash: InfoHash, result: Result<(), StoreError>) {
        let Some(t) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        let event = match result {
            // Written since (a piece refused, then written again): its own
            // write ends with a flush of its own.
            Ok(()) if !t.writing.is_empty() => return,
            Ok(()) => {
                t.completed_waiting = false;
                Event::Completed
            }
            Err(error) => {
                tracing::warn!(%info_hash, %error, "store flush failed; torrent paused");
                t.engine.pause();
                t.flush_failed = true;
                Event::StoreFailed { piece: None, error }
            }
        };
        self.publish(info_hash, event);
    }

    /// Writes again the pieces the store refused, and flushes again if that
    /// failed (on resume).
    pub(super) fn write_again(&mut self, info_hash: InfoHash) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if std::mem::take(&mut torrent.flush_failed) && torrent.writing.is_empty() {
            self.actions.push_back(Action::SyncStore { info_hash });
            return;
        }
        for piece in std::mem::take(&mut torrent.unwritten) {
            if let Some(data) = torrent.writing.get(&piece).cloned() {
                self.actions.push_back(Action::WritePiece {
                    info_hash,
                    piece,
                    data,
                });
            }
        }
    }

    /// Reports newly verified pieces to the tracker (`x_cs_have`), once the
    /// torrent's first announce went out: before it, the tracker has no
    /// membership to add them to and refuses them, and the first announce
    /// carries the whole bitfield anyway. The same holds between a tracker
    /// reconnection and the announce that follows it.
    fn flush_haves(&mut self, info_hash: InfoHash) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if torrent.new_haves.is_empty() {
            return;
        }
        let pieces = std::mem::take(&mut torrent.new_haves);
        if self.has_tracker && torrent.announced {
            for chunk in pieces.chunks(4096) {
                self.actions.push_back(Action::Signal(SignalOut::Have {
                    info_hash,
                    peer_id: self.config.peer_id,
                    pieces: chunk.to_vec(),
                }));
            }
        }
    }
}
