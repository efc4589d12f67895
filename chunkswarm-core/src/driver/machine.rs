//! The driver's state machine: every torrent's [`Swarm`], the tracker
//! protocol, offers, answers and connection attempts, with no I/O, no clock
//! and no tasks.
//!
//! Like the swarm it is driven from outside, by the [shell](super::run) in
//! production and by the tests in virtual time:
//!
//! 1. feed each input as it happens, with the current time: a handle command
//!    (`add_torrent`, `set_playback`, ...), a tracker message
//!    ([`handle_signal`](Machine::handle_signal)), a channel event, or the
//!    outcome of an [`Action`] carried out earlier (`handle_*`);
//! 2. drain [`poll_output`](Machine::poll_output), carrying out every
//!    [`Action`] in order;
//! 3. wait until [`poll_timeout`](Machine::poll_timeout) (or the next input)
//!    and call [`handle_timeout`](Machine::handle_timeout).
//!
//! I/O objects (channel senders, pending connections, stores, web seeds)
//! stay with the shell, named by the keys the actions carry: a
//! [`PeerKey`], an [`Attempt`], an offer id, an info hash.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use web_time::Instant;

use super::action::{Action, Attempt};
use super::announce::REINTRODUCE_EVERY;
use super::config::DriverConfig;
use super::engine::Engine;
use super::handle::{AddTorrentError, DriverEvent};
use super::io::{ConnectError, TrackerError};
use super::signal::Id20;
use super::torrent::{Connecting, Torrent};
use crate::metadata_fetch::MetadataFetch;
use crate::metainfo::{Info, InfoHash};
use crate::piece_map::Bitfield;
use crate::rng::SeededRng;
use crate::swarm::{Event, PeerKey, PeerSnapshot, Playback, Stats, Swarm, SwarmConfig};

/// How long answering a remote offer may take (gathering our ICE
/// candidates) before the attempt is given up.
pub(super) const ANSWER_BOUND: Duration = Duration::from_secs(60);

/// The driver's state: see the [module docs](self).
pub(super) struct Machine {
    pub(super) config: DriverConfig,
    /// A tracker link exists.
    pub(super) has_tracker: bool,
    /// A connector exists: offers can be made and answered.
    pub(super) has_connector: bool,
    pub(super) torrents: BTreeMap<InfoHash, Torrent>,
    pub(super) peer_torrent: BTreeMap<PeerKey, InfoHash>,
    pub(super) actions: VecDeque<Action>,
    next_key: u64,
    next_attempt: u64,
    /// False between `SignalIn::Disconnected` and `SignalIn::Reconnected`.
    pub(super) tracker_up: bool,
    /// The tracker as last heard of (`None` before any news), told to
    /// torrents added later: `Ok` connected, `Err` why it is down.
    pub(super) tracker_news: Option<Result<(), TrackerError>>,
    /// The tracker has handed out ICE servers at least once.
    pub(super) ice_granted: bool,
    pub(super) rng: SeededRng,
}

impl Machine {
    /// A machine without torrents; `has_tracker` and `has_connector` say
    /// whether the shell can reach a tracker and make connections.
    pub(super) fn new(config: DriverConfig, has_tracker: bool, has_connector: bool) -> Self {
        Self {
            rng: SeededRng::new(config.rng_seed ^ 0x4452_4956_4552),
            config,
            has_tracker,
            has_connector,
            torrents: BTreeMap::new(),
            peer_torrent: BTreeMap::new(),
            actions: VecDeque::new(),
            next_key: 0,
            next_attempt: 0,
            tracker_up: true,
            tracker_news: None,
            ice_granted: false,
        }
    }

    /// The next thing to carry out.
    pub(super) fn poll_output(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.torrents.values().filter_map(Torrent::deadline).min()
    }

    /// Runs what is due: engine timers, expired offers and attempts,
    /// announces.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for info_hash in hashes {
            self.expire(now, info_hash);
            let Some(torrent) = self.torrents.get_mut(&info_hash) else {
                continue;
            };
            if torrent.engine.poll_timeout().is_some_and(|at| at <= now) {
                torrent.engine.handle_timeout(now);
            }
            if !torrent.announcing && torrent.next_announce <= now {
                self.announce(now, info_hash, None);
            }
            self.drain(now, info_hash);
        }
    }

    /// Drops the torrent's offers and attempts whose time is up.
    fn expire(&mut self, now: Instant, info_hash: InfoHash) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        let expired: Vec<Id20> = torrent
            .offers
            .iter()
            .filter(|(_, expires)| **expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for offer_id in expired {
            torrent.offers.remove(&offer_id);
            self.actions.push_back(Action::DropOffer {
                info_hash,
                offer_id,
            });
        }
        let late: Vec<(Id20, Connecting)> = torrent
            .connecting
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(remote, c)| (*remote, *c))
            .collect();
        for (remote, _) in &late {
            torrent.connecting.remove(remote);
        }
        for (remote, c) in late {
            self.actions
                .push_back(Action::Abandon { attempt: c.attempt });
            if c.opening {
                let error = ConnectError::TimedOut(self.config.connect_timeout);
                self.connect_failed(now, info_hash, remote, error);
            }
        }
    }

    /// Whether the torrent runs.
    #[cfg(test)]
    pub(super) fn has_torrent(&self, info_hash: &InfoHash) -> bool {
        self.torrents.contains_key(info_hash)
    }

    /// Whether [`add_torrent`](Self::add_torrent) of `info_hash` can
    /// succeed: the torrent is not running, or only its fetched metadata
    /// waits with its connections (parked).
    pub(super) fn can_add(&self, info_hash: &InfoHash) -> bool {
        self.torrents
            .get(info_hash)
            .is_none_or(|t| t.engine.is_parked())
    }

    /// Starts a torrent whose store holds `held`; `has_origin` says whether
    /// it has a web seed. Subscribers hear `Completed` at once if nothing is
    /// missing, and the tracker's state as last heard. A torrent whose
    /// metadata fetch is over (parked) starts on the fetch's connections.
    pub(super) fn add_torrent(
        &mut self,
        now: Instant,
        info: Info,
        held: Bitfield,
        mut config: SwarmConfig,
        has_origin: bool,
    ) -> Result<(), AddTorrentError> {
        let info_hash = info.info_hash();
        if !self.can_add(&info_hash) {
            return Err(AddTorrentError::Duplicate);
        }
        config.peer_id = self.config.peer_id;
        config.rng_seed = self.rng.next_u64();
        config.http.enabled &= has_origin;
        let pieces = held.count_ones();
        let swarm = Swarm::new(now, info, held, config);
        if self.torrents.contains_key(&info_hash) {
            self.take_over_parked(now, swarm);
            return Ok(());
        }
        tracing::info!(%info_hash, pieces, "torrent added");
        let engine = Engine::Swarm(Box::new(swarm));
        let torrent = Torrent::new(now, engine, self.config.announce_interval);
        let complete = torrent.engine.is_complete();
        self.torrents.insert(info_hash, torrent);
        if complete {
            self.publish(info_hash, Event::Completed);
        }
        self.tell_tracker_news(now, info_hash);
        Ok(())
    }

    /// Starts fetching the info dictionary of `info_hash` from the swarm's
    /// peers (a magnet link without `xs`): announces, offers and
    /// connections as for a torrent, with a [`MetadataFetch`] in place of
    /// the swarm. It ends with [`Action::MetadataFetched`]. With a
    /// dictionary the torrent is then parked: its connections stay open and
    /// are read, its announces go on, until
    /// [`add_torrent`](Self::add_torrent) starts the download on them (no
    /// new connection, no second `started`) or
    /// [`remove_torrent`](Self::remove_torrent) drops it. Without one (the
    /// dictionary is unusable) the torrent is removed.
    pub(super) fn add_fetch(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
    ) -> Result<(), AddTorrentError> {
        if self.torrents.contains_key(&info_hash) {
            return Err(AddTorrentError::Duplicate);
        }
        let fetch = MetadataFetch::new(info_hash, self.config.peer_id);
        tracing::info!(%info_hash, "fetching the metadata from peers");
        let engine = Engine::Metadata(Box::new(fetch));
        let torrent = Torrent::new(now, engine, self.config.announce_interval);
        self.torrents.insert(info_hash, torrent);
        self.tell_tracker_news(now, info_hash);
        Ok(())
    }

    /// Tells a new torrent's subscribers the tracker's state as last heard,
    /// and carries out its first outputs.
    pub(super) fn tell_tracker_news(&mut self, now: Instant, info_hash: InfoHash) {
        match self.tracker_news.clone() {
            Some(Ok(())) => self.publish(info_hash, Event::TrackerConnected),
            Some(Err(error)) => self.publish(info_hash, Event::TrackerFailed { error }),
            None => {}
        }
        self.drain(now, info_hash);
    }

    /// Announces `stopped` and drops the torrent with its connections;
    /// whether it ran.
    pub(super) fn remove_torrent(&mut self, now: Instant, info_hash: InfoHash) -> bool {
        self.announce_stopped(now, info_hash);
        let Some(torrent) = self.torrents.remove(&info_hash) else {
            return false;
        };
        for peer in torrent.channels.keys() {
            self.actions.push_back(Action::ChannelClose { peer: *peer });
        }
        for id in torrent.http {
            self.actions.push_back(Action::HttpCancel { info_hash, id });
        }
        for c in torrent.connecting.values() {
            self.actions
                .push_back(Action::Abandon { attempt: c.attempt });
        }
        self.peer_torrent.retain(|_, owner| *owner != info_hash);
        self.actions.push_back(Action::Forget { info_hash });
        tracing::info!(%info_hash, "torrent removed");
        true
    }

    /// Announces `stopped` for every torrent and drops them all.
    pub(super) fn shutdown(&mut self, now: Instant) {
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for info_hash in hashes {
            self.remove_torrent(now, info_hash);
        }
    }

    /// Moves the playhead of a torrent, or stops streaming.
    pub(super) fn set_playback(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        playback: Option<Playback>,
    ) {
        if let Some(t) = self.torrents.get_mut(&info_hash) {
            t.engine.set_playback(now, playback);
            if t.playhead_jumped(now, playback) {
                // Announce soon with offers, even at the connection limit:
                // the tracker introduces holders of the new position.
                t.reintroduce = true;
                let earliest = t.reintroduced_at.map_or(now, |at| at + REINTRODUCE_EVERY);
                t.next_announce = t.next_announce.min(earliest.max(now));
            }
            self.drain(now, info_hash);
        }
    }

    /// Pauses or resumes a torrent; resuming writes again what the store
    /// refused.
    pub(super) fn pause(&mut self, now: Instant, info_hash: InfoHash, paused: bool) {
        let Some(t) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if paused {
            t.engine.pause();
        } else {
            t.engine.resume(now);
            self.write_again(info_hash);
        }
        self.drain(now, info_hash);
    }

    /// Caps a torrent's upload rate.
    pub(super) fn set_upload_limit(&mut self, info_hash: InfoHash, limit: Option<u64>) {
        if let Some(t) = self.torrents.get_mut(&info_hash) {
            t.engine.set_upload_rate_limit(limit);
        }
    }

    /// A torrent's statistics.
    pub(super) fn stats(&self, now: Instant, info_hash: InfoHash) -> Option<Stats> {
        self.torrents.get(&info_hash).map(|t| t.engine.stats(now))
    }

    /// A torrent's connections.
    pub(super) fn peers(&self, now: Instant, info_hash: InfoHash) -> Option<Vec<PeerSnapshot>> {
        self.torrents.get(&info_hash).map(|t| t.engine.peers(now))
    }

    /// Bytes arrived on a channel.
    pub(super) fn handle_channel_data(&mut self, now: Instant, peer: PeerKey, data: &[u8]) {
        if let Some((info_hash, t)) = self.torrent_of(peer) {
            t.engine.handle_peer_data(now, peer, data);
            self.drain(now, info_hash);
        }
    }

    /// A channel's send buffer crossed a water mark.
    pub(super) fn handle_channel_writable(&mut self, now: Instant, peer: PeerKey, writable: bool) {
        if let Some((info_hash, t)) = self.torrent_of(peer) {
            t.engine.handle_peer_writable(now, peer, writable);
            self.drain(now, info_hash);
        }
    }

    /// A channel closed (the remote, the network, or a failed send).
    pub(super) fn handle_channel_closed(&mut self, now: Instant, peer: PeerKey) {
        let Some(info_hash) = self.peer_torrent.remove(&peer) else {
            return;
        };
        let Some(t) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if t.channels.remove(&peer).is_some() {
            tracing::debug!(%info_hash, peer = peer.0, "channel closed");
            t.engine.handle_peer_closed(now, peer);
        }
        self.drain(now, info_hash);
    }

    fn torrent_of(&mut self, peer: PeerKey) -> Option<(InfoHash, &mut Torrent)> {
        let info_hash = *self.peer_torrent.get(&peer)?;
        Some((info_hash, self.torrents.get_mut(&info_hash)?))
    }

    /// The channel of `attempt` is open: returns the key it goes by, or
    /// `None` if the attempt was given up (the shell then closes it).
    pub(super) fn handle_connected(&mut self, now: Instant, attempt: Attempt) -> Option<PeerKey> {
        let (info_hash, remote) = self.attempt(attempt)?;
        let torrent = self.torrents.get_mut(&info_hash)?;
        torrent.connecting.remove(&remote);
        torrent.failed_connections = 0;
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        tracing::debug!(%info_hash, peer = key.0, "channel open");
        self.peer_torrent.insert(key, info_hash);
        torrent.channels.insert(key, remote);
        torrent.engine.handle_peer_connected(now, key);
        self.drain(now, info_hash);
        Some(key)
    }

    /// The connection of `attempt` could not be opened.
    pub(super) fn handle_connect_failed(
        &mut self,
        now: Instant,
        attempt: Attempt,
        error: ConnectError,
    ) {
        let Some((info_hash, remote)) = self.attempt(attempt) else {
            return;
        };
        if let Some(t) = self.torrents.get_mut(&info_hash) {
            t.connecting.remove(&remote);
        }
        self.connect_failed(now, info_hash, remote, error);
        self.drain(now, info_hash);
    }

    /// The torrent and remote of a current attempt.
    pub(super) fn attempt(&self, attempt: Attempt) -> Option<(InfoHash, Id20)> {
        self.torrents
            .iter()
            .find_map(|(info_hash, t)| Some((*info_hash, t.remote_of(attempt)?)))
    }

    /// A fresh attempt number.
    pub(super) fn next_attempt(&mut self) -> Attempt {
        self.next_attempt += 1;
        Attempt(self.next_attempt)
    }

    /// A connection to `remote` failed and is closed: tell subscribers why,
    /// and announce again (with fresh offers) after a backoff.
    pub(super) fn connect_failed(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        remote: Id20,
        error: ConnectError,
    ) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        torrent.failed_connections = torrent.failed_connections.saturating_add(1);
        let retry_in = torrent.retry_backoff();
        if !torrent.announcing {
            torrent.next_announce = torrent.next_announce.min(now + retry_in);
        }
        tracing::info!(
            %info_hash,
            peer = %String::from_utf8_lossy(&remote),
            %error,
            ?retry_in,
            "connection failed; announcing again"
        );
        let event = Event::ConnectFailed {
            peer_id: remote,
            error,
            retry_in,
        };
        self.publish(info_hash, event);
    }

    /// Queues an event for subscribers.
    pub(super) fn publish(&mut self, info_hash: InfoHash, event: Event) {
        let event = DriverEvent { info_hash, event };
        self.actions.push_back(Action::Publish(event));
    }
}
