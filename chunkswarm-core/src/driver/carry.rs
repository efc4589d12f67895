//! The shell carrying out the state machine's actions with the adapter's
//! I/O, and feeding back what finished.

use futures::future::{self, AbortHandle};
use futures::stream::{self, StreamExt as _};
use web_time::Instant;

use super::action::{Action, Attempt};
use super::handle::FetchMetadataError;
use super::io::{ConnectError, HttpError, PeerChannel, PendingConnection};
use super::run::{Done, Shell, TorrentIo};
use super::signal::{Id20, SignalOut};
use super::{BoxFuture, DriverEvent};
use crate::metainfo::InfoHash;

impl Shell {
    /// Carries out every action the machine has queued, in order.
    pub(super) fn carry_out(&mut self, now: Instant) {
        while let Some(action) = self.machine.poll_output() {
            self.act(now, action);
        }
    }

    fn act(&mut self, now: Instant, action: Action) {
        match action {
            Action::Signal(message) => self.send_signal(message),
            Action::Publish(event) => self.publish(&event),
            Action::SetIceServers(grant) => {
                if let Some(connector) = &self.connector {
                    connector.set_ice_servers(&grant);
                }
            }
            Action::MakeOffers { info_hash, ids } => self.make_offers(now, info_hash, ids),
            Action::DropOffer {
                info_hash,
                offer_id,
            } => {
                self.offers.remove(&(info_hash, offer_id));
            }
            Action::OpenOffer {
                info_hash,
                offer_id,
                attempt,
                answer_sdp,
            } => match self.offers.remove(&(info_hash, offer_id)) {
                Some(pending) => self.open(attempt, pending, Some(answer_sdp)),
                None => {
                    let error = ConnectError::Failed("the offer is gone".into());
                    self.machine.handle_connect_failed(now, attempt, error);
                }
            },
            Action::AcceptOffer { attempt, offer_sdp } => self.accept(attempt, offer_sdp),
            Action::OpenAnswered { attempt } => match self.answered.remove(&attempt) {
                Some(pending) => self.open(attempt, pending, None),
                None => {
                    let error = ConnectError::Failed("the answer is gone".into());
                    self.machine.handle_connect_failed(now, attempt, error);
                }
            },
            Action::Abandon { attempt } => {
                self.answered.remove(&attempt);
                if let Some(abort) = self.attempts.remove(&attempt) {
                    abort.abort();
                }
            }
            Action::ChannelSend { peer, data } => {
                let sent = self.channels.get(&peer).map(|sender| sender.send(data));
                if let Some(Err(_)) = sent {
                    self.channels.remove(&peer);
                    self.machine.handle_channel_closed(now, peer);
                }
            }
            Action::ChannelClose { peer } => {
                if let Some(sender) = self.channels.remove(&peer) {
                    sender.close();
                }
            }
            Action::HttpFetch {
                info_hash,
                id,
                range,
            } => {
                let Some(origin) = self.stores.get(&info_hash).and_then(|t| t.origin.clone())
                else {
                    let no_seed = Err(HttpError::NoWebSeed);
                    self.machine
                        .handle_http_response(now, info_hash, id, no_seed);
                    return;
                };
                let (abort, registration) = AbortHandle::new_pair();
                self.http.insert((info_hash, id), abort);
                let fetch = async move { origin.get_range(range).await };
                let fetch = future::Abortable::new(fetch, registration);
                self.tasks.push(Box::pin(async move {
                    match fetch.await {
                        Ok(result) => Done::Http(info_hash, id, result),
                        Err(future::Aborted) => Done::Aborted,
                    }
                }));
            }
            Action::HttpCancel { info_hash, id } => {
                if let Some(abort) = self.http.remove(&(info_hash, id)) {
                    abort.abort();
                }
            }
            Action::ReadPiece { info_hash, piece } => {
                let Some(store) = self.stores.get(&info_hash).map(|t| t.store.clone()) else {
                    return;
                };
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
            Action::WritePiece {
                info_hash,
                piece,
                data,
            } => {
                let Some(store) = self.stores.get(&info_hash).map(|t| t.store.clone()) else {
                    return;
                };
                self.writes.push(Box::pin(async move {
                    Done::Written(info_hash, piece, store.write(piece, data).await)
                }));
            }
            Action::SyncStore { info_hash } => {
                let Some(store) = self.stores.get(&info_hash).map(|t| t.store.clone()) else {
                    return;
                };
                self.writes.push(Box::pin(async move {
                    Done::Synced(info_hash, store.sync().await)
                }));
            }
            Action::MetadataFetched { info_hash, result } => {
                if let Some(waiter) = self.metadata_waiters.remove(&info_hash) {
                    let _ = waiter.send(result.map_err(FetchMetadataError::Unusable));
                }
            }
            Action::Forget { info_hash } => {
                if let Some(waiter) = self.metadata_waiters.remove(&info_hash) {
                    let _ = waiter.send(Err(FetchMetadataError::Stopped));
                }
                self.stores.remove(&info_hash);
                self.offers.retain(|(owner, _), _| *owner != info_hash);
                self.http.retain(|(owner, _), _| *owner != info_hash);
            }
        }
    }

    /// Feeds a finished future to the machine.
    pub(super) fn done(&mut self, now: Instant, done: Done) {
        match done {
            Done::Aborted => {}
            Done::Loaded(spec, held, reply) => {
                let held = match held {
                    Ok(held) => held,
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        return;
                    }
                };
                let spec = *spec;
                let has_origin = spec.origin.is_some();
                let info_hash = spec.info.info_hash();
                let added =
                    self.machine
                        .add_torrent(now, spec.info, held.clone(), spec.config, has_origin);
                if added.is_ok() {
                    let io = TorrentIo {
                        store: spec.store,
                        origin: spec.origin,
                    };
                    self.stores.insert(info_hash, io);
                }
                let _ = reply.send(added.map(|()| held));
            }
            Done::Http(info_hash, id, result) => {
                self.http.remove(&(info_hash, id));
                self.machine
                    .handle_http_response(now, info_hash, id, result);
            }
            Done::Read(info_hash, piece, data) => {
                self.machine.handle_piece_read(now, info_hash, piece, data);
            }
            Done::Written(info_hash, piece, result) => {
                self.machine.handle_written(info_hash, piece, result);
            }
            Done::Synced(info_hash, result) => self.machine.handle_synced(info_hash, result),
            Done::Offers(info_hash, made) => {
                let mut sdps = Vec::with_capacity(made.len());
                for (id, offered) in made {
                    sdps.push((id, offered.sdp));
                    self.offers.insert((info_hash, id), offered.pending);
                }
                self.machine.handle_offers_made(now, info_hash, sdps);
            }
            Done::Answered(attempt, result) => {
                self.attempts.remove(&attempt);
                let result = result.map(|offered| {
                    self.answered.insert(attempt, offered.pending);
                    offered.sdp
                });
                self.machine.handle_answer_made(now, attempt, result);
            }
            Done::Opened(attempt, result) => {
                self.attempts.remove(&attempt);
                match result {
                    Ok(channel) => self.adopt(now, attempt, channel),
                    Err(error) => self.machine.handle_connect_failed(now, attempt, error),
                }
            }
        }
    }

    /// An open channel: kept under the key the machine gives it, or closed
    /// if its attempt was given up.
    fn adopt(&mut self, now: Instant, attempt: Attempt, channel: PeerChannel) {
        let Some(peer) = self.machine.handle_connected(now, attempt) else {
            channel.sender.close();
            return;
        };
        let events = channel
            .events
            .map(move |event| (peer, Some(event)))
            .chain(stream::once(future::ready((peer, None))));
        self.peer_events.push(Box::pin(events));
        self.channels.insert(peer, channel.sender);
    }

    fn make_offers(&mut self, now: Instant, info_hash: InfoHash, ids: Vec<Id20>) {
        let Some(connector) = self.connector.clone() else {
            self.machine.handle_offers_made(now, info_hash, Vec::new());
            return;
        };
        self.tasks.push(Box::pin(async move {
            let made = future::join_all(ids.into_iter().map(|id| {
                let connector = connector.clone();
                async move { (id, connector.create_offer().await) }
            }))
            .await;
            let mut failed = Vec::new();
            let offers = made
                .into_iter()
                .filter_map(|(id, result)| match result {
                    Ok(offered) => Some((id, offered)),
                    Err(e) => {
                        failed.push(e);
                        None
                    }
                })
                .collect();
            if let Some(e) = failed.first() {
                // One line for the lot: they fail alike (e.g. a relay-only
                // connector before the tracker named a TURN server).
                tracing::warn!(count = failed.len(), error = %e, "could not make offers");
            }
            Done::Offers(info_hash, offers)
        }));
    }

    fn accept(&mut self, attempt: Attempt, offer_sdp: String) {
        let Some(connector) = self.connector.clone() else {
            return;
        };
        self.spawn_attempt(
            attempt,
            Box::pin(
                async move { Done::Answered(attempt, connector.accept_offer(&offer_sdp).await) },
            ),
        );
    }

    fn open(
        &mut self,
        attempt: Attempt,
        pending: Box<dyn PendingConnection>,
        answer: Option<String>,
    ) {
        let opening = pending.open(answer);
        let step = Box::pin(async move { Done::Opened(attempt, opening.await) });
        self.spawn_attempt(attempt, step);
    }

    /// Runs a step of an attempt, abortable by [`Action::Abandon`].
    fn spawn_attempt(&mut self, attempt: Attempt, step: BoxFuture<'static, Done>) {
        let (abort, registration) = AbortHandle::new_pair();
        self.attempts.insert(attempt, abort);
        let step = future::Abortable::new(step, registration);
        self.tasks
            .push(Box::pin(async move { step.await.unwrap_or(Done::Aborted) }));
    }

    fn send_signal(&self, message: SignalOut) {
        if let Some(signal) = &self.signal {
            if let Err(e) = signal.send(message) {
                tracing::debug!(error = %e, "tracker message not sent");
            }
        }
    }

    /// Hands an event to every subscriber still listening.
    fn publish(&mut self, event: &DriverEvent) {
        self.subscribers
            .retain(|subscriber| subscriber.unbounded_send(event.clone()).is_ok());
    }
}
