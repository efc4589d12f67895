//! The driver loop: see the [module docs](super) for what it does.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either, FutureExt as _};
use futures::stream::{self, FuturesUnordered, SelectAll, StreamExt as _};
use web_time::Instant;

use super::handle::{AddTorrentError, Command, DriverEvent, Handle, TorrentSpec};
use super::io::{
    ChannelEvent, ConnectError, HttpError, Offered, PeerChannel, PeerConnector, Signaling,
    SignalingLink, Sleeper, StoreError, TrackerError,
};
use super::signal::{Id20, SignalIn, SignalOut};
use super::torrent::Torrent;
use super::{BoxFuture, EventStream};
use crate::layout::PieceIndex;
use crate::metainfo::InfoHash;
use crate::piece_map::Bitfield;
use crate::rng::SeededRng;
use crate::swarm::{Event, HttpRequestId, PeerKey, Swarm};

/// How the driver uses the tracker and makes connections.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverConfig {
    /// Our peer id, on the tracker and in handshakes. Every
    /// `DriverConfig::default()` draws its own, so peers made with defaults
    /// meet each other; [`DriverConfig::seeded`] gives a reproducible one.
    pub peer_id: Id20,
    /// Seeds offer ids and each torrent's engine (whose own
    /// [`SwarmConfig::rng_seed`](crate::swarm::SwarmConfig::rng_seed) the
    /// driver replaces).
    pub rng_seed: u64,
    /// Offers made per announce (WebTorrent clients send up to 10).
    pub offers_per_announce: usize,
    /// No offers are made while this many connections are open.
    pub max_connections: usize,
    /// How long an offer waits for its answer.
    pub offer_ttl: Duration,
    /// How long a connection may take to open once answered.
    pub connect_timeout: Duration,
    /// Re-announce interval until the tracker names one.
    pub announce_interval: Duration,
    /// Re-announce interval of an incomplete torrent without connections,
    /// so a lone peer finds newcomers sooner.
    pub lonely_interval: Duration,
}

/// A different seed on every call: the standard library's per-process
/// random hash keys, a call counter and the clock. Not for cryptography; for
/// ids that must not repeat (two peers in one process, two processes).
#[allow(
    clippy::disallowed_methods,
    reason = "settings, not the state machine: a fresh seed mixes the clock in"
)]
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    let since_epoch = web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since_epoch.as_nanos());
    hasher.finish()
}

impl Default for DriverConfig {
    /// Sound settings with a peer id and RNG seed of their own: two
    /// defaults never share a peer id (the seed mixes the standard library's
    /// per-process random hash keys, a call counter and the clock).
    fn default() -> Self {
        Self::seeded(fresh_seed())
    }
}

impl DriverConfig {
    /// The default settings with a peer id (`-CS0001-` and 12 letters or
    /// digits) and RNG drawn from `seed`; the same seed gives the same id.
    pub fn seeded(seed: u64) -> Self {
        const ALPHABET: &[u8; 62] =
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut rng = SeededRng::new(seed);
        let mut peer_id = *b"-CS0001-000000000000";
        for byte in &mut peer_id[8..] {
            *byte = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
        }
        Self {
            peer_id,
            rng_seed: seed,
            offers_per_announce: 5,
            max_connections: 32,
            offer_ttl: Duration::from_secs(50),
            connect_timeout: Duration::from_secs(20),
            announce_interval: Duration::from_secs(120),
            lonely_interval: Duration::from_secs(15),
        }
    }
}

/// The adapter's I/O for [`driver`]. Without signaling or a connector the
/// torrents run on their web seeds alone.
pub struct DriverIo {
    /// The tracker connection.
    pub signaling: Option<SignalingLink>,
    /// Makes WebRTC connections.
    pub connector: Option<Arc<dyn PeerConnector>>,
    /// Sleeps.
    pub sleeper: Arc<dyn Sleeper>,
}

impl fmt::Debug for DriverIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverIo")
            .field("signaling", &self.signaling)
            .field("connector", &self.connector)
            .field("sleeper", &self.sleeper)
            .finish()
    }
}

/// Starts a driver: returns the handle and the future to spawn.
pub fn driver(config: DriverConfig, io: DriverIo) -> (Handle, BoxFuture<'static, ()>) {
    let (commands_in, commands) = mpsc::unbounded();
    let (signal, signal_events) = match io.signaling {
        Some(link) => (Some(link.sender), Some(link.events)),
        None => (None, None),
    };
    let driver = Driver {
        rng: SeededRng::new(config.rng_seed ^ 0x4452_4956_4552),
        config,
        signal,
        signal_events,
        connector: io.connector,
        sleeper: io.sleeper,
        commands,
        torrents: BTreeMap::new(),
        peer_torrent: BTreeMap::new(),
        tasks: FuturesUnordered::new(),
        writes: FuturesUnordered::new(),
        peer_events: SelectAll::new(),
        subscribers: Vec::new(),
        next_key: 0,
        next_attempt: 0,
        tracker_up: true,
        tracker_news: None,
        ice_granted: false,
        sleep: None,
        turn: 0,
    };
    (Handle::new(commands_in), Box::pin(driver.run()))
}

/// A finished I/O future.
pub(super) enum Done {
    Loaded(
        Box<TorrentSpec>,
        Result<Bitfield, StoreError>,
        oneshot::Sender<Result<Bitfield, AddTorrentError>>,
    ),
    Http(InfoHash, HttpRequestId, Result<Bytes, HttpError>),
    Read(InfoHash, PieceIndex, Option<Bytes>),
    Written(InfoHash, PieceIndex, Result<(), StoreError>),
    /// The store made every written piece durable (or failed to).
    Synced(InfoHash, Result<(), StoreError>),
    Offers(InfoHash, Vec<(Id20, Offered)>),
    Answered(InfoHash, Id20, Id20, u64, Result<Offered, ConnectError>),
    Opened(InfoHash, Id20, u64, Result<PeerChannel, ConnectError>),
    Aborted,
}

enum Wake {
    Command(Option<Command>),
    Signal(Option<SignalIn>),
    Channel(PeerKey, Option<ChannelEvent>),
    Done(Done),
    Timer,
}

pub(super) struct Driver {
    pub(super) config: DriverConfig,
    pub(super) signal: Option<Arc<dyn Signaling>>,
    signal_events: Option<EventStream<SignalIn>>,
    pub(super) connector: Option<Arc<dyn PeerConnector>>,
    pub(super) sleeper: Arc<dyn Sleeper>,
    commands: mpsc::UnboundedReceiver<Command>,
    pub(super) torrents: BTreeMap<InfoHash, Torrent>,
    pub(super) peer_torrent: BTreeMap<PeerKey, InfoHash>,
    pub(super) tasks: FuturesUnordered<BoxFuture<'static, Done>>,
    /// Store writes, apart so that shutdown can finish them.
    pub(super) writes: FuturesUnordered<BoxFuture<'static, Done>>,
    pub(super) peer_events: SelectAll<EventStream<(PeerKey, Option<ChannelEvent>)>>,
    pub(super) subscribers: Vec<mpsc::UnboundedSender<DriverEvent>>,
    pub(super) next_key: u64,
    /// Names connection attempts (see `Connecting::attempt`).
    pub(super) next_attempt: u64,
    /// False between `SignalIn::Disconnected` and `SignalIn::Reconnected`.
    pub(super) tracker_up: bool,
    /// The tracker as last heard of (`None` before any news), told to
    /// torrents added later: `Ok` connected, `Err` why it is down.
    pub(super) tracker_news: Option<Result<(), TrackerError>>,
    /// The tracker has handed out ICE servers at least once.
    pub(super) ice_granted: bool,
    pub(super) rng: SeededRng,
    sleep: Option<(Instant, BoxFuture<'static, ()>)>,
    turn: usize,
}

/// The wall clock in Unix seconds: read here, in the loop, and passed in.
#[allow(
    clippy::disallowed_methods,
    reason = "the driver loop is the shell that reads the clock"
)]
fn unix_seconds() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Driver {
    /// The loop: the one place of the driver that reads the clock.
    #[allow(
        clippy::disallowed_methods,
        reason = "the driver loop is the shell that reads the clock"
    )]
    async fn run(mut self) {
        loop {
            let now = Instant::now();
            self.service(now);
            self.arm_sleep(now);
            let wake = self.next_wake().await;
            let now = Instant::now();
            match wake {
                Wake::Command(None | Some(Command::Shutdown)) => break,
                Wake::Command(Some(command)) => self.command(now, command),
                Wake::Signal(None) => {
                    tracing::warn!("tracker connection closed");
                    self.signal_events = None;
                }
                Wake::Signal(Some(message)) => self.signal_in(now, unix_seconds(), message),
                Wake::Channel(key, event) => self.channel_event(now, key, event),
                Wake::Done(done) => self.done(now, done),
                Wake::Timer => {}
            }
        }
        self.stop();
        // Verified pieces must reach the store: finish the writes under way.
        while let Some(done) = self.writes.next().await {
            match done {
                Done::Written(info_hash, piece, Err(e)) => {
                    tracing::warn!(%info_hash, piece = piece.get(), error = %e, "piece write failed");
                }
                Done::Synced(info_hash, Err(e)) => {
                    tracing::warn!(%info_hash, error = %e, "store flush failed");
                }
                _ => {}
            }
        }
        tracing::info!("driver stopped");
    }

    /// Runs due timeouts and announces, then carries out every output.
    fn service(&mut self, now: Instant) {
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for info_hash in hashes {
            let Some(torrent) = self.torrents.get_mut(&info_hash) else {
                continue;
            };
            if torrent.swarm.poll_timeout().is_some_and(|at| at <= now) {
                torrent.swarm.handle_timeout(now);
            }
            torrent.expire_offers(now);
            torrent
                .connecting
                .retain(|_, c| now.saturating_duration_since(c.since) < Duration::from_secs(60));
            if !torrent.announcing && torrent.next_announce <= now {
                self.announce(now, info_hash, None);
            }
            self.drain(now, info_hash);
        }
    }

    fn arm_sleep(&mut self, now: Instant) {
        let deadline = self.torrents.values().filter_map(Torrent::deadline).min();
        match deadline {
            None => self.sleep = None,
            Some(at) if self.sleep.as_ref().is_some_and(|(armed, _)| *armed == at) => {}
            Some(at) => {
                let sleep = self.sleeper.sleep(at.saturating_duration_since(now));
                self.sleep = Some((at, sleep));
            }
        }
    }

    /// Waits for the next input, taking the sources in turn so a busy one
    /// cannot starve the others.
    async fn next_wake(&mut self) -> Wake {
        self.turn = self.turn.wrapping_add(1);
        let start = self.turn;
        future::poll_fn(|cx| {
            if let Poll::Ready(command) = self.commands.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Command(command));
            }
            for i in 0..5 {
                let ready = match (start + i) % 5 {
                    0 => match &mut self.signal_events {
                        Some(events) => events.poll_next_unpin(cx).map(Wake::Signal),
                        None => Poll::Pending,
                    },
                    1 if !self.peer_events.is_empty() => match self.peer_events.poll_next_unpin(cx)
                    {
                        Poll::Ready(Some((key, event))) => Poll::Ready(Wake::Channel(key, event)),
                        _ => Poll::Pending,
                    },
                    2 if !self.tasks.is_empty() => match self.tasks.poll_next_unpin(cx) {
                        Poll::Ready(Some(done)) => Poll::Ready(Wake::Done(done)),
                        _ => Poll::Pending,
                    },
                    4 if !self.writes.is_empty() => match self.writes.poll_next_unpin(cx) {
                        Poll::Ready(Some(done)) => Poll::Ready(Wake::Done(done)),
                        _ => Poll::Pending,
                    },
                    3 => match &mut self.sleep {
                        Some((_, sleep)) => sleep.poll_unpin(cx).map(|()| Wake::Timer),
                        None => Poll::Pending,
                    },
                    _ => Poll::Pending,
                };
                if ready.is_ready() {
                    if matches!(ready, Poll::Ready(Wake::Timer)) {
                        self.sleep = None;
                    }
                    return ready;
                }
            }
            Poll::Pending
        })
        .await
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Add(spec, reply) => {
                if self.torrents.contains_key(&spec.info.info_hash()) {
                    let _ = reply.send(Err(AddTorrentError::Duplicate));
                    return;
                }
                let store = spec.store.clone();
                self.tasks.push(Box::pin(async move {
                    let held = store.verified(&spec.info).await;
                    Done::Loaded(spec, held, reply)
                }));
            }
            Command::Playback(info_hash, playback) => {
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    t.swarm.set_playback(now, playback);
                }
            }
            Command::Pause(info_hash, paused) => {
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    if paused {
                        t.swarm.pause();
                    } else {
                        t.swarm.resume(now);
                        self.write_again(info_hash);
                    }
                }
            }
            Command::Stats(info_hash, reply) => {
                let stats = self.torrents.get(&info_hash).map(|t| t.swarm.stats(now));
                let _ = reply.send(stats);
            }
            Command::Remove(info_hash, reply) => {
                let _ = reply.send(self.remove(now, info_hash));
            }
            Command::Peers(info_hash, reply) => {
                let peers = self.torrents.get(&info_hash).map(|t| t.swarm.peers(now));
                let _ = reply.send(peers);
            }
            Command::UploadLimit(info_hash, limit) => {
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    t.swarm.set_upload_rate_limit(limit);
                }
            }
            Command::Subscribe(subscriber) => self.subscribers.push(subscriber),
            Command::Shutdown => {}
        }
    }

    fn add_loaded(
        &mut self,
        now: Instant,
        spec: TorrentSpec,
        held: Result<Bitfield, StoreError>,
        reply: oneshot::Sender<Result<Bitfield, AddTorrentError>>,
    ) {
        let info_hash = spec.info.info_hash();
        let held = match held {
            Ok(held) => held,
            Err(e) => {
                let _ = reply.send(Err(AddTorrentError::Store(e)));
                return;
            }
        };
        if self.torrents.contains_key(&info_hash) {
            let _ = reply.send(Err(AddTorrentError::Duplicate));
            return;
        }
        let mut config = spec.config;
        config.peer_id = self.config.peer_id;
        config.rng_seed = self.rng.next_u64();
        config.http.enabled &= spec.origin.is_some();
        let swarm = Swarm::new(now, spec.info, held.clone(), config);
        tracing::info!(%info_hash, pieces = held.count_ones(), "torrent added");
        let torrent = Torrent::new(
            now,
            swarm,
            spec.store,
            spec.origin,
            self.config.announce_interval,
        );
        let complete = torrent.swarm.is_complete();
        self.torrents.insert(info_hash, torrent);
        let _ = reply.send(Ok(held));
        // Complete from the start: subscribers hear it as they would have.
        if complete {
            self.publish(DriverEvent {
                info_hash,
                event: Event::Completed,
            });
        }
        let tracker = match self.tracker_news.clone() {
            Some(Ok(())) => Some(Event::TrackerConnected),
            Some(Err(error)) => Some(Event::TrackerFailed { error }),
            None => None,
        };
        if let Some(event) = tracker {
            self.publish(DriverEvent { info_hash, event });
        }
    }

    fn channel_event(&mut self, now: Instant, key: PeerKey, event: Option<ChannelEvent>) {
        let Some(info_hash) = self.peer_torrent.get(&key).copied() else {
            return;
        };
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        match event {
            Some(ChannelEvent::Data(data)) => torrent.swarm.handle_peer_data(now, key, &data),
            Some(ChannelEvent::Writable(writable)) => {
                torrent.swarm.handle_peer_writable(now, key, writable);
            }
            None => {
                self.peer_torrent.remove(&key);
                if torrent.channels.remove(&key).is_some() {
                    tracing::debug!(%info_hash, peer = key.0, "channel closed");
                    torrent.swarm.handle_peer_closed(now, key);
                }
            }
        }
        self.drain(now, info_hash);
    }

    fn done(&mut self, now: Instant, done: Done) {
        let info_hash = match done {
            Done::Aborted => return,
            Done::Loaded(spec, held, reply) => {
                let info_hash = spec.info.info_hash();
                self.add_loaded(now, *spec, held, reply);
                info_hash
            }
            Done::Http(info_hash, id, result) => {
                let Some(t) = self.torrents.get_mut(&info_hash) else {
                    return;
                };
                if t.http.remove(&id).is_some() {
                    t.swarm.handle_http_response(now, id, result);
                }
                info_hash
            }
            Done::Read(info_hash, piece, data) => {
                let Some(t) = self.torrents.get_mut(&info_hash) else {
                    return;
                };
                t.swarm.handle_piece_read(now, piece, data);
                info_hash
            }
            Done::Written(info_hash, piece, result) => {
                let Some(t) = self.torrents.get_mut(&info_hash) else {
                    return;
                };
                if let Err(error) = result {
                    tracing::warn!(%info_hash, piece = piece.get(), %error, "piece write failed; torrent paused");
                    // The piece stays in `writing`, served from memory.
                    t.unwritten.insert(piece);
                    t.swarm.pause();
                    self.publish(DriverEvent {
                        info_hash,
                        event: Event::StoreFailed {
                            piece: Some(piece),
                            error,
                        },
                    });
                    return;
                }
                t.writing.remove(&piece);
                if t.writing.is_empty() && t.completed_waiting {
                    self.sync_store(info_hash);
                }
                return;
            }
            Done::Synced(info_hash, result) => {
                let Some(t) = self.torrents.get_mut(&info_hash) else {
                    return;
                };
                let event = match result {
                    // Written since (a piece refused, then written again):
                    // its own write ends with a flush of its own.
                    Ok(()) if !t.writing.is_empty() => return,
                    Ok(()) => {
                        t.completed_waiting = false;
                        Event::Completed
                    }
                    Err(error) => {
                        tracing::warn!(%info_hash, %error, "store flush failed; torrent paused");
                        t.swarm.pause();
                        t.flush_failed = true;
                        Event::StoreFailed { piece: None, error }
                    }
                };
                self.publish(DriverEvent { info_hash, event });
                return;
            }
            Done::Offers(info_hash, offers) => {
                self.announce(now, info_hash, Some(offers));
                info_hash
            }
            Done::Answered(info_hash, from, offer_id, attempt, result) => {
                self.answered(info_hash, from, offer_id, attempt, result);
                info_hash
            }
            Done::Opened(info_hash, remote, attempt, result) => {
                self.opened(now, info_hash, remote, attempt, result);
                info_hash
            }
        };
        self.drain(now, info_hash);
    }

    fn opened(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        remote: Id20,
        attempt: u64,
        result: Result<PeerChannel, ConnectError>,
    ) {
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if torrent.connecting.get(&remote).map(|c| c.attempt) != Some(attempt) {
            // Given up for another attempt to the same peer.
            if let Ok(channel) = result {
                channel.sender.close();
            }
            return;
        }
        torrent.connecting.remove(&remote);
        let channel = match result {
            Ok(channel) => channel,
            Err(e) => {
                self.connect_failed(now, info_hash, remote, e);
                return;
            }
        };
        torrent.failed_connections = 0;
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        tracing::debug!(%info_hash, peer = key.0, "channel open");
        let events = channel
            .events
            .map(move |event| (key, Some(event)))
            .chain(stream::once(future::ready((key, None))));
        self.peer_events.push(Box::pin(events));
        self.peer_torrent.insert(key, info_hash);
        torrent.channels.insert(
            key,
            super::torrent::Channel {
                sender: channel.sender,
                remote,
            },
        );
        torrent.swarm.handle_peer_connected(now, key);
    }

    /// A connection to `remote` failed and is closed: tell subscribers why,
    /// and announce again (with fresh offers) after a backoff.
    fn connect_failed(
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
        self.publish(DriverEvent {
            info_hash,
            event: Event::ConnectFailed {
                peer_id: remote,
                error,
                retry_in,
            },
        });
    }

    /// Bounds a connection's opening by the connect timeout.
    pub(super) fn open_task(
        &self,
        info_hash: InfoHash,
        remote: Id20,
        attempt: u64,
        opening: BoxFuture<'static, Result<PeerChannel, ConnectError>>,
    ) -> BoxFuture<'static, Done> {
        let bound = self.config.connect_timeout;
        let timeout = self.sleeper.sleep(bound);
        Box::pin(async move {
            let result = match future::select(opening, timeout).await {
                Either::Left((result, _)) => result,
                Either::Right(((), _)) => Err(ConnectError::TimedOut(bound)),
            };
            Done::Opened(info_hash, remote, attempt, result)
        })
    }

    pub(super) fn send_signal(&self, message: SignalOut) {
        if let Some(signal) = &self.signal {
            if let Err(e) = signal.send(message) {
                tracing::debug!(error = %e, "tracker message not sent");
            }
        }
    }

    /// Announces `stopped` and drops the torrent with its connections.
    fn remove(&mut self, now: Instant, info_hash: InfoHash) -> bool {
        self.announce_stopped(now, info_hash);
        let Some(torrent) = self.torrents.remove(&info_hash) else {
            return false;
        };
        for channel in torrent.channels.values() {
            channel.sender.close();
        }
        for abort in torrent.http.values() {
            abort.abort();
        }
        self.peer_torrent.retain(|_, owner| *owner != info_hash);
        tracing::info!(%info_hash, "torrent removed");
        true
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "called from the loop, at its end"
    )]
    fn stop(&mut self) {
        let now = Instant::now();
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for info_hash in hashes {
            self.announce_stopped(now, info_hash);
            if let Some(torrent) = self.torrents.get_mut(&info_hash) {
                for channel in torrent.channels.values() {
                    channel.sender.close();
                }
                for abort in torrent.http.values() {
                    abort.abort();
                }
            }
        }
        self.torrents.clear();
    }
}
