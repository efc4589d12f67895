//! The tracker side of the driver: announces with offers, answering offers,
//! applying answers.

use std::time::Duration;

use futures::future;
use web_time::Instant;

use super::handle::DriverEvent;
use super::ice::IceGrant;
use super::io::{ConnectError, Offered, TrackerError};
use super::run::{Done, Driver};
use super::signal::{Announce, AnnounceEvent, Id20, SignalIn, SignalOut};
use super::torrent::{Connecting, PendingOffer};
use crate::layout::PieceIndex;
use crate::metainfo::InfoHash;
use crate::swarm::Event;

/// Used when there is no tracker: nothing to announce, ever.
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

impl Driver {
    /// Announces the torrent. Without `offers`, first makes offers (when
    /// connections are wanted) and comes back with them as [`Done::Offers`].
    pub(super) fn announce(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        offers: Option<Vec<(Id20, Offered)>>,
    ) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if self.signal.is_none() || !self.tracker_up {
            // Announced when the tracker is back (`SignalIn::Reconnected`).
            torrent.next_announce = now + NEVER;
            return;
        }
        let open = torrent.channels.len() + torrent.connecting.len() + torrent.offers.len();
        let wanted = self.config.max_connections.saturating_sub(open);
        let count = self.config.offers_per_announce.min(wanted);
        let connector = self
            .connector
            .clone()
            .filter(|_| offers.is_none() && count > 0);
        if let Some(connector) = connector {
            torrent.announcing = true;
            let ids: Vec<Id20> = (0..count).map(|_| self.random_id()).collect();
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
            return;
        }
        let offers = offers.unwrap_or_default();
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        torrent.announcing = false;
        let event = (!torrent.announced).then_some(AnnounceEvent::Started);
        torrent.announced = true;
        let lonely = torrent.channels.is_empty() && !torrent.swarm.is_complete();
        let interval = if lonely {
            torrent.interval.min(self.config.lonely_interval)
        } else {
            torrent.interval
        };
        torrent.next_announce = now + interval;
        let stats = torrent.swarm.stats(now);
        let mut sdps = Vec::with_capacity(offers.len());
        for (id, offered) in offers {
            sdps.push((id, offered.sdp));
            torrent.offers.insert(
                id,
                PendingOffer {
                    connection: offered.pending,
                    expires: now + self.config.offer_ttl,
                },
            );
        }
        tracing::debug!(%info_hash, offers = sdps.len(), ?event, "announcing");
        let message = SignalOut::Announce(Announce {
            info_hash,
            peer_id: self.config.peer_id,
            numwant: sdps.len() as u32,
            uploaded: stats.uploaded_bytes,
            downloaded: stats.p2p_bytes + stats.http_bytes,
            left: stats.total_bytes.saturating_sub(stats.verified_bytes),
            event,
            offers: sdps,
            bitfield: Some(torrent.swarm.have().clone()),
            position: torrent.swarm.playback_piece().map(PieceIndex::get),
        });
        self.send_signal(message);
    }

    pub(super) fn announce_completed(&mut self, now: Instant, info_hash: InfoHash) {
        self.announce_event(now, info_hash, AnnounceEvent::Completed);
    }

    pub(super) fn announce_stopped(&mut self, now: Instant, info_hash: InfoHash) {
        self.announce_event(now, info_hash, AnnounceEvent::Stopped);
    }

    fn announce_event(&mut self, now: Instant, info_hash: InfoHash, event: AnnounceEvent) {
        let Some(torrent) = self.torrents.get(&info_hash) else {
            return;
        };
        if !torrent.announced {
            return;
        }
        let stats = torrent.swarm.stats(now);
        let message = SignalOut::Announce(Announce {
            info_hash,
            peer_id: self.config.peer_id,
            numwant: 0,
            uploaded: stats.uploaded_bytes,
            downloaded: stats.p2p_bytes + stats.http_bytes,
            left: torrent.left(now),
            event: Some(event),
            offers: Vec::new(),
            bitfield: Some(torrent.swarm.have().clone()),
            position: torrent.swarm.playback_piece().map(PieceIndex::get),
        });
        self.send_signal(message);
    }

    /// A message from the tracker; `unix_now` is the wall clock in Unix
    /// seconds (ICE credentials expire by it).
    pub(super) fn signal_in(&mut self, now: Instant, unix_now: u64, message: SignalIn) {
        match message {
            SignalIn::Offer {
                info_hash,
                from,
                offer_id,
                sdp,
            } => {
                let Some(connector) = self.connector.clone() else {
                    return;
                };
                let Some(torrent) = self.torrents.get_mut(&info_hash) else {
                    return;
                };
                let open = torrent.channels.len() + torrent.connecting.len();
                if from == self.config.peer_id
                    || torrent.knows_remote(&from)
                    || open >= self.config.max_connections
                {
                    return;
                }
                let attempt = self.start_connecting(now, info_hash, from, false);
                self.tasks.push(Box::pin(async move {
                    let result = connector.accept_offer(&sdp).await;
                    Done::Answered(info_hash, from, offer_id, attempt, result)
                }));
            }
            SignalIn::Answer {
                info_hash,
                from,
                offer_id,
                sdp,
            } => {
                let Some(torrent) = self.torrents.get_mut(&info_hash) else {
                    return;
                };
                let Some(offer) = torrent.offers.remove(&offer_id) else {
                    return;
                };
                if torrent.channels.values().any(|c| c.remote == from) {
                    return;
                }
                if let Some(other) = torrent.connecting.get(&from) {
                    // Each side answered the other's offer before either saw
                    // an answer. Both keep the connection offered by the
                    // smaller peer id, so they agree on one.
                    if other.we_offered || from < self.config.peer_id {
                        return;
                    }
                }
                let attempt = self.start_connecting(now, info_hash, from, true);
                let opening = offer.connection.open(Some(sdp));
                let task = self.open_task(info_hash, from, attempt, opening);
                self.tasks.push(task);
            }
            SignalIn::Announced {
                info_hash,
                interval,
                ice,
                ..
            } => {
                if let (Some(t), Some(interval)) = (self.torrents.get_mut(&info_hash), interval) {
                    t.interval = interval.max(Duration::from_secs(1));
                }
                if let Some(grant) = ice {
                    self.ice_granted(now, unix_now, info_hash, &grant);
                }
            }
            SignalIn::Failure { info_hash, reason } => {
                tracing::warn!(?info_hash, %reason, "tracker refused a message");
                let error = TrackerError::Refused { reason };
                self.publish_tracker(info_hash, &Event::TrackerFailed { error });
            }
            SignalIn::Disconnected(error) => {
                tracing::info!(%error, "tracker unreachable: no offers until it is back");
                self.tracker_up = false;
                self.tracker_news = Some(Err(error.clone()));
                self.publish_tracker(None, &Event::TrackerFailed { error });
            }
            SignalIn::Reconnected => {
                tracing::info!("tracker connection back: announcing again");
                self.tracker_up = true;
                self.tracker_news = Some(Ok(()));
                for torrent in self.torrents.values_mut() {
                    torrent.announced = false;
                    torrent.next_announce = now;
                }
                self.publish_tracker(None, &Event::TrackerConnected);
            }
        }
    }

    /// Tells the torrent `only` (every torrent for `None`) about the tracker.
    fn publish_tracker(&mut self, only: Option<InfoHash>, event: &Event) {
        let hashes: Vec<InfoHash> = match only {
            Some(info_hash) if self.torrents.contains_key(&info_hash) => vec![info_hash],
            Some(_) => Vec::new(),
            None => self.torrents.keys().copied().collect(),
        };
        for info_hash in hashes {
            self.publish(DriverEvent {
                info_hash,
                event: event.clone(),
            });
        }
    }

    /// Hands fresh ICE servers to the connector, and makes sure the
    /// torrent announces (and so renews them) before half their remaining
    /// lifetime has passed.
    fn ice_granted(&mut self, now: Instant, now_unix: u64, info_hash: InfoHash, grant: &IceGrant) {
        if let Some(connector) = &self.connector {
            connector.set_ice_servers(grant);
        }
        if !std::mem::replace(&mut self.ice_granted, true) {
            // The offers made before were made without these servers (with
            // a relay-only policy, none could be made): announce again now
            // where connections are wanted, with offers that can use them.
            for t in self.torrents.values_mut() {
                if t.channels.is_empty() && !t.announcing {
                    t.next_announce = t.next_announce.min(now);
                }
            }
        }
        if let (Some(expires), Some(t)) = (grant.expires, self.torrents.get_mut(&info_hash)) {
            let half_left = Duration::from_secs(expires.saturating_sub(now_unix) / 2);
            t.interval = t.interval.min(half_left.max(Duration::from_secs(1)));
        }
    }

    pub(super) fn answered(
        &mut self,
        info_hash: InfoHash,
        from: Id20,
        offer_id: Id20,
        attempt: u64,
        result: Result<Offered, ConnectError>,
    ) {
        let current = self
            .torrents
            .get(&info_hash)
            .and_then(|t| t.connecting.get(&from))
            .is_some_and(|c| c.attempt == attempt);
        if !current {
            // The torrent is gone, or we kept our own offer to this peer.
            return;
        }
        let offered = match result {
            Ok(offered) => offered,
            Err(e) => {
                tracing::debug!(%info_hash, error = %e, "could not answer an offer");
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    t.connecting.remove(&from);
                }
                return;
            }
        };
        self.send_signal(SignalOut::Answer {
            info_hash,
            peer_id: self.config.peer_id,
            to_peer_id: from,
            offer_id,
            sdp: offered.sdp,
        });
        let task = self.open_task(info_hash, from, attempt, offered.pending.open(None));
        self.tasks.push(task);
    }

    /// Records a new attempt to connect to `remote`, replacing any earlier
    /// one, and returns its number.
    fn start_connecting(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        remote: Id20,
        we_offered: bool,
    ) -> u64 {
        self.next_attempt += 1;
        let attempt = self.next_attempt;
        if let Some(torrent) = self.torrents.get_mut(&info_hash) {
            let connecting = Connecting {
                since: now,
                attempt,
                we_offered,
            };
            torrent.connecting.insert(remote, connecting);
        }
        attempt
    }

    fn random_id(&mut self) -> Id20 {
        let mut id = [0u8; 20];
        for chunk in id.chunks_mut(8) {
            let bytes = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        id
    }
}
