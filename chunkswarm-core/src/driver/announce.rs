//! The tracker side of the state machine: announces with offers, answering
//! offers, applying answers, glare.

use std::time::Duration;

use web_time::Instant;

use super::action::{Action, Attempt};
use super::ice::IceGrant;
use super::io::{ConnectError, TrackerError};
use super::machine::{ANSWER_BOUND, Machine};
use super::signal::{Announce, AnnounceEvent, Id20, SignalIn, SignalOut};
use super::torrent::Connecting;
use crate::layout::PieceIndex;
use crate::metainfo::InfoHash;
use crate::swarm::Event;

/// Used when there is no tracker: nothing to announce, ever.
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Seeks bring an announce with offers at most this often.
pub const REINTRODUCE_EVERY: Duration = Duration::from_secs(5);

/// How many offers an announce makes with `open` connections (open, being
/// made or offered): enough to reach `max_connections`; or, after a seek, a
/// full set even at the limit, up to two sets beyond it (the engine closes
/// what exceeds its own `max_peers`), so that the tracker can introduce
/// holders of the new position.
#[must_use]
pub fn offers_wanted(
    open: usize,
    max_connections: usize,
    per_announce: usize,
    after_seek: bool,
) -> usize {
    let limit = if after_seek {
        max_connections + 2 * per_announce
    } else {
        max_connections
    };
    per_announce.min(limit.saturating_sub(open))
}

impl Machine {
    /// Announces the torrent. Without `offers`, first has offers made (when
    /// connections are wanted) and comes back with them through
    /// [`handle_offers_made`](Self::handle_offers_made).
    pub(super) fn announce(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        offers: Option<Vec<(Id20, String)>>,
    ) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if !self.has_tracker || !self.tracker_up {
            // Announced when the tracker is back (`SignalIn::Reconnected`);
            // offers made meanwhile could reach nobody.
            torrent.announcing = false;
            torrent.next_announce = now + NEVER;
            for (offer_id, _) in offers.unwrap_or_default() {
                self.actions.push_back(Action::DropOffer {
                    info_hash,
                    offer_id,
                });
            }
            return;
        }
        let open = torrent.channels.len() + torrent.connecting.len() + torrent.offers.len();
        let count = offers_wanted(
            open,
            self.config.max_connections,
            self.config.offers_per_announce,
            torrent.reintroduce,
        );
        if self.has_connector && offers.is_none() && count > 0 {
            torrent.announcing = true;
            let ids: Vec<Id20> = (0..count).map(|_| self.random_id()).collect();
            self.actions
                .push_back(Action::MakeOffers { info_hash, ids });
            return;
        }
        let offers = offers.unwrap_or_default();
        torrent.announcing = false;
        if std::mem::take(&mut torrent.reintroduce) {
            torrent.reintroduced_at = Some(now);
        }
        let event = (!torrent.announced).then_some(AnnounceEvent::Started);
        torrent.announced = true;
        let lonely = torrent.channels.is_empty() && !torrent.engine.is_complete();
        let interval = if lonely {
            torrent.interval.min(self.config.lonely_interval)
        } else {
            torrent.interval
        };
        torrent.next_announce = now + interval;
        let stats = torrent.engine.stats(now);
        for (id, _) in &offers {
            torrent.offers.insert(*id, now + self.config.offer_ttl);
        }
        tracing::debug!(%info_hash, offers = offers.len(), ?event, "announcing");
        let message = SignalOut::Announce(Announce {
            info_hash,
            peer_id: self.config.peer_id,
            numwant: offers.len() as u32,
            uploaded: stats.uploaded_bytes,
            downloaded: stats.p2p_bytes + stats.http_bytes,
            left: torrent.engine.left(now),
            event,
            offers,
            bitfield: torrent.engine.have().cloned(),
            position: torrent.engine.playback_piece().map(PieceIndex::get),
        });
        self.actions.push_back(Action::Signal(message));
    }

    /// The offers asked for by [`Action::MakeOffers`] that could be made,
    /// as `(offer id, SDP)`: the announce goes out with them.
    pub(super) fn handle_offers_made(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        offers: Vec<(Id20, String)>,
    ) {
        if !self.torrents.contains_key(&info_hash) {
            for (offer_id, _) in offers {
                self.actions.push_back(Action::DropOffer {
                    info_hash,
                    offer_id,
                });
            }
            return;
        }
        self.announce(now, info_hash, Some(offers));
        self.drain(now, info_hash);
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
        let stats = torrent.engine.stats(now);
        let message = SignalOut::Announce(Announce {
            info_hash,
            peer_id: self.config.peer_id,
            numwant: 0,
            uploaded: stats.uploaded_bytes,
            downloaded: stats.p2p_bytes + stats.http_bytes,
            left: torrent.left(now),
            event: Some(event),
            offers: Vec::new(),
            bitfield: torrent.engine.have().cloned(),
            position: torrent.engine.playback_piece().map(PieceIndex::get),
        });
        self.actions.push_back(Action::Signal(message));
    }

    /// A message from the tracker; `unix_now` is the wall clock in Unix
    /// seconds (ICE credentials expire by it).
    pub(super) fn handle_signal(&mut self, now: Instant, unix_now: u64, message: SignalIn) {
        match message {
            SignalIn::Offer {
                info_hash,
                from,
                offer_id,
                sdp,
            } => self.offered(now, info_hash, from, offer_id, sdp),
            SignalIn::Answer {
                info_hash,
                from,
                offer_id,
                sdp,
            } => self.answer_in(now, info_hash, from, offer_id, sdp),
            SignalIn::Announced {
                info_hash,
                interval,
                ice,
                facts,
                ..
            } => {
                if let (Some(t), Some(interval)) = (self.torrents.get_mut(&info_hash), interval) {
                    t.interval = interval.max(Duration::from_secs(1));
                }
                if let (Some(t), Some(facts)) = (self.torrents.get_mut(&info_hash), facts) {
                    t.engine.handle_swarm_facts(now, facts);
                    self.drain(now, info_hash);
                }
                if let Some(grant) = ice {
                    self.ice_granted(now, unix_now, info_hash, grant);
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

    /// A remote peer's offer: answered unless we already talk to that peer,
    /// have no room, or it is our own.
    fn offered(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        from: Id20,
        offer_id: Id20,
        sdp: String,
    ) {
        if !self.has_connector {
            return;
        }
        let Some(torrent) = self.torrents.get(&info_hash) else {
            return;
        };
        let open = torrent.channels.len() + torrent.connecting.len();
        if from == self.config.peer_id
            || torrent.knows_remote(&from)
            || open >= self.config.max_connections
        {
            return;
        }
        let deadline = now + ANSWER_BOUND;
        let attempt = self.start_connecting(info_hash, from, offer_id, false, deadline);
        self.actions.push_back(Action::AcceptOffer {
            attempt,
            offer_sdp: sdp,
        });
    }

    /// A remote peer answered one of our offers.
    fn answer_in(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        from: Id20,
        offer_id: Id20,
        sdp: String,
    ) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if torrent.offers.remove(&offer_id).is_none() {
            return;
        }
        let drop_offer = Action::DropOffer {
            info_hash,
            offer_id,
        };
        if torrent.talks_to(&from) {
            self.actions.push_back(drop_offer);
            return;
        }
        if let Some(other) = torrent.connecting.get(&from) {
            // Glare: each side answered the other's offer before either saw
            // an answer. Both keep the connection offered by the smaller
            // peer id, so they agree on one.
            if other.we_offered || from < self.config.peer_id {
                self.actions.push_back(drop_offer);
                return;
            }
        }
        let deadline = now + self.config.connect_timeout;
        let attempt = self.start_connecting(info_hash, from, offer_id, true, deadline);
        self.actions.push_back(Action::OpenOffer {
            info_hash,
            offer_id,
            attempt,
            answer_sdp: sdp,
        });
    }

    /// Our answer to a remote offer is made (or could not be): it goes to
    /// the tracker and the channel is opened.
    pub(super) fn handle_answer_made(
        &mut self,
        now: Instant,
        attempt: Attempt,
        result: Result<String, ConnectError>,
    ) {
        let Some((info_hash, remote)) = self.attempt(attempt) else {
            // The torrent is gone, or we kept our own offer to this peer.
            self.actions.push_back(Action::Abandon { attempt });
            return;
        };
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        let sdp = match result {
            Ok(sdp) => sdp,
            Err(e) => {
                tracing::debug!(%info_hash, error = %e, "could not answer an offer");
                torrent.connecting.remove(&remote);
                self.actions.push_back(Action::Abandon { attempt });
                return;
            }
        };
        let Some(connecting) = torrent.connecting.get_mut(&remote) else {
            return;
        };
        connecting.opening = true;
        connecting.deadline = now + self.config.connect_timeout;
        let offer_id = connecting.offer_id;
        self.actions.push_back(Action::Signal(SignalOut::Answer {
            info_hash,
            peer_id: self.config.peer_id,
            to_peer_id: remote,
            offer_id,
            sdp,
        }));
        self.actions.push_back(Action::OpenAnswered { attempt });
    }

    /// Tells the torrent `only` (every torrent for `None`) about the tracker.
    fn publish_tracker(&mut self, only: Option<InfoHash>, event: &Event) {
        let hashes: Vec<InfoHash> = match only {
            Some(info_hash) if self.torrents.contains_key(&info_hash) => vec![info_hash],
            Some(_) => Vec::new(),
            None => self.torrents.keys().copied().collect(),
        };
        for info_hash in hashes {
            self.publish(info_hash, event.clone());
        }
    }

    /// Hands fresh ICE servers to the connector, and makes sure the
    /// torrent announces (and so renews them) before half their remaining
    /// lifetime has passed.
    fn ice_granted(&mut self, now: Instant, now_unix: u64, info_hash: InfoHash, grant: IceGrant) {
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
        if self.has_connector {
            self.actions.push_back(Action::SetIceServers(grant));
        }
    }

    /// Records a new attempt to connect to `remote`, replacing (and
    /// abandoning) any earlier one.
    fn start_connecting(
        &mut self,
        info_hash: InfoHash,
        remote: Id20,
        offer_id: Id20,
        we_offered: bool,
        deadline: Instant,
    ) -> Attempt {
        let attempt = self.next_attempt();
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return attempt;
        };
        let connecting = Connecting {
            attempt,
            we_offered,
            offer_id,
            opening: we_offered,
            deadline,
        };
        if let Some(earlier) = torrent.connecting.insert(remote, connecting) {
            self.actions.push_back(Action::Abandon {
                attempt: earlier.attempt,
            });
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
