//! Carrying out a swarm's outputs.

use bytes::Bytes;
use futures::future::{self, AbortHandle};
use web_time::Instant;

use super::handle::DriverEvent;
use super::io::HttpError;
use super::run::{Done, Driver};
use super::signal::SignalOut;
use crate::layout::PieceIndex;
use crate::metainfo::InfoHash;
use crate::swarm::{Event, Output, PieceState};

impl Driver {
    /// Drains the torrent's outputs until there are none.
    pub(super) fn drain(&mut self, now: Instant, info_hash: InfoHash) {
        loop {
            let Some(torrent) = self.torrents.get_mut(&info_hash) else {
                return;
            };
            let Some(output) = torrent.swarm.poll_output() else {
                break;
            };
            match output {
                Output::Send { peer, data } => {
                    let sent = torrent
                        .channels
                        .get(&peer)
                        .map(|channel| channel.sender.send(data));
                    if let Some(Err(_)) = sent {
                        torrent.channels.remove(&peer);
                        self.peer_torrent.remove(&peer);
                        torrent.swarm.handle_peer_closed(now, peer);
                    }
                }
                Output::Close { peer, reason } => {
                    tracing::debug!(%info_hash, peer = peer.0, ?reason, "closing channel");
                    if let Some(channel) = torrent.channels.remove(&peer) {
                        channel.sender.close();
                    }
                    self.peer_torrent.remove(&peer);
                }
                Output::HttpFetch { id, range } => {
                    let Some(origin) = torrent.origin.clone() else {
                        torrent
                            .swarm
                            .handle_http_response(now, id, Err(HttpError::NoWebSeed));
                        continue;
                    };
                    let (abort, registration) = AbortHandle::new_pair();
                    torrent.http.insert(id, abort);
                    let fetch = async move { origin.get_range(range).await };
                    let fetch = future::Abortable::new(fetch, registration);
                    self.tasks.push(Box::pin(async move {
                        match fetch.await {
                            Ok(result) => Done::Http(info_hash, id, result),
                            Err(future::Aborted) => Done::Aborted,
                        }
                    }));
                }
                Output::HttpCancel { id } => {
                    if let Some(abort) = torrent.http.remove(&id) {
                        abort.abort();
                    }
                }
                Output::StorePiece { piece, data } => {
                    torrent.writing.insert(piece, data.clone());
                    self.write(info_hash, piece, data);
                }
                Output::ReadPiece { piece } => {
                    if let Some(data) = torrent.writing.get(&piece).cloned() {
                        torrent.swarm.handle_piece_read(now, piece, Some(data));
                        continue;
                    }
                    let store = torrent.store.clone();
                    self.tasks.push(Box::pin(async move {
                        let data = match store.read(piece).await {
                            Ok(data) => Some(data),
                            Err(e) => {
                                tracing::warn!(piece = piece.get(), error = %e, "piece read failed");
                                None
                            }
                        };
                        Done::Read(info_hash, piece, data)
                    }));
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
                        self.sync_store(info_hash);
                    }
                    return;
                }
                Event::Progress(stats) => {
                    torrent.uploaded = stats.uploaded_bytes;
                }
                _ => {}
            }
        }
        self.publish(DriverEvent { info_hash, event });
    }

    /// Hands a verified piece to the torrent's store; the piece must be in
    /// its `writing` until the write lands.
    fn write(&mut self, info_hash: InfoHash, piece: PieceIndex, data: Bytes) {
        let Some(torrent) = self.torrents.get(&info_hash) else {
            return;
        };
        let store = torrent.store.clone();
        self.writes.push(Box::pin(async move {
            let result = store.write(piece, data).await;
            Done::Written(info_hash, piece, result)
        }));
    }

    /// Flushes the torrent's store; `Completed` follows when it succeeds.
    pub(super) fn sync_store(&mut self, info_hash: InfoHash) {
        let Some(torrent) = self.torrents.get(&info_hash) else {
            return;
        };
        let store = torrent.store.clone();
        self.writes.push(Box::pin(async move {
            Done::Synced(info_hash, store.sync().await)
        }));
    }

    /// Writes again the pieces the store refused, and flushes again if that
    /// failed (on resume).
    pub(super) fn write_again(&mut self, info_hash: InfoHash) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if std::mem::take(&mut torrent.flush_failed) && torrent.writing.is_empty() {
            self.sync_store(info_hash);
            return;
        }
        let pieces: Vec<(PieceIndex, Bytes)> = std::mem::take(&mut torrent.unwritten)
            .into_iter()
            .filter_map(|piece| Some((piece, torrent.writing.get(&piece)?.clone())))
            .collect();
        for (piece, data) in pieces {
            self.write(info_hash, piece, data);
        }
    }

    /// Hands an event to every subscriber still listening.
    pub(super) fn publish(&mut self, event: DriverEvent) {
        self.subscribers
            .retain(|subscriber| subscriber.unbounded_send(event.clone()).is_ok());
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
        if self.signal.is_some() && torrent.announced {
            for chunk in pieces.chunks(4096) {
                self.send_signal(SignalOut::Have {
                    info_hash,
                    peer_id: self.config.peer_id,
                    pieces: chunk.to_vec(),
                });
            }
        }
    }
}
