//! The shell: the futures loop around the [state machine](super::machine)
//! that both adapters run. It reads the clock, waits on every source at
//! once, feeds what arrives to the machine and carries out its
//! [`Action`](super::action::Action)s with the adapter's I/O
//! (see [`carry`](super::carry)). It decides nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::task::Poll;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, AbortHandle, FutureExt as _};
use futures::stream::{FuturesUnordered, SelectAll, StreamExt as _};
use web_time::Instant;

use super::action::Attempt;
use super::config::DriverConfig;
use super::handle::{AddTorrentError, Command, FetchMetadataError, Handle, TorrentSpec};
use super::io::{
    ChannelEvent, ChannelSender, ConnectError, HttpError, HttpOrigin, PeerChannel, PeerConnector,
    PendingConnection, PieceStore, Signaling, SignalingLink, Sleeper, StoreError,
};
use super::machine::Machine;
use super::signal::{Id20, SignalIn};
use super::{BoxFuture, DriverEvent, EventStream};
use crate::layout::PieceIndex;
use crate::metainfo::{Info, InfoHash};
use crate::piece_map::Bitfield;
use crate::swarm::{HttpRequestId, PeerKey};

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
    let machine = Machine::new(config, signal.is_some(), io.connector.is_some());
    let shell = Shell {
        machine,
        signal,
        signal_events,
        connector: io.connector,
        sleeper: io.sleeper,
        commands,
        stores: BTreeMap::new(),
        offers: BTreeMap::new(),
        answered: BTreeMap::new(),
        attempts: BTreeMap::new(),
        channels: BTreeMap::new(),
        http: BTreeMap::new(),
        tasks: FuturesUnordered::new(),
        writes: FuturesUnordered::new(),
        peer_events: SelectAll::new(),
        subscribers: Vec::new(),
        metadata_waiters: BTreeMap::new(),
        sleep: None,
        turn: 0,
    };
    (Handle::new(commands_in), Box::pin(shell.run()))
}

/// A finished I/O future.
pub(super) enum Done {
    Loaded(
        Box<TorrentSpec>,
        Result<Bitfield, StoreError>,
        oneshot::Sender<Result<Bitfield, AddTorrentError>>,
    ),
    Http(InfoHash, HttpRequestId, Result<bytes::Bytes, HttpError>),
    Read(InfoHash, PieceIndex, Option<bytes::Bytes>),
    Written(InfoHash, PieceIndex, Result<(), StoreError>),
    Synced(InfoHash, Result<(), StoreError>),
    /// Offers made for an announce: the pending connections and SDPs.
    Offers(InfoHash, Vec<(Id20, super::io::Offered)>),
    Answered(Attempt, Result<super::io::Offered, ConnectError>),
    Opened(Attempt, Result<PeerChannel, ConnectError>),
    Aborted,
}

enum Wake {
    Command(Option<Command>),
    Signal(Option<SignalIn>),
    Channel(PeerKey, Option<ChannelEvent>),
    Done(Done),
    Timer,
}

/// A torrent's store and web seed.
pub(super) struct TorrentIo {
    pub(super) store: Arc<dyn PieceStore>,
    pub(super) origin: Option<Arc<dyn HttpOrigin>>,
}

pub(super) struct Shell {
    pub(super) machine: Machine,
    pub(super) signal: Option<Arc<dyn Signaling>>,
    signal_events: Option<EventStream<SignalIn>>,
    pub(super) connector: Option<Arc<dyn PeerConnector>>,
    pub(super) sleeper: Arc<dyn Sleeper>,
    commands: mpsc::UnboundedReceiver<Command>,
    pub(super) stores: BTreeMap<InfoHash, TorrentIo>,
    /// Our offers waiting for an answer.
    pub(super) offers: BTreeMap<(InfoHash, Id20), Box<dyn PendingConnection>>,
    /// Connections we answered, waiting to be opened.
    pub(super) answered: BTreeMap<Attempt, Box<dyn PendingConnection>>,
    /// Aborts the future under way for an attempt.
    pub(super) attempts: BTreeMap<Attempt, AbortHandle>,
    pub(super) channels: BTreeMap<PeerKey, Box<dyn ChannelSender>>,
    pub(super) http: BTreeMap<(InfoHash, HttpRequestId), AbortHandle>,
    pub(super) tasks: FuturesUnordered<BoxFuture<'static, Done>>,
    /// Store writes, apart so that shutdown can finish them.
    pub(super) writes: FuturesUnordered<BoxFuture<'static, Done>>,
    pub(super) peer_events: SelectAll<EventStream<(PeerKey, Option<ChannelEvent>)>>,
    pub(super) subscribers: Vec<mpsc::UnboundedSender<DriverEvent>>,
    /// Who waits for the metadata of a torrent being fetched.
    pub(super) metadata_waiters:
        BTreeMap<InfoHash, oneshot::Sender<Result<Info, FetchMetadataError>>>,
    sleep: Option<(Instant, BoxFuture<'static, ()>)>,
    turn: usize,
}

/// The wall clock in Unix seconds: read here, in the shell, and passed in.
#[allow(
    clippy::disallowed_methods,
    reason = "the driver's shell reads the clock"
)]
fn unix_seconds() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The monotonic clock, read here, in the shell, and passed in.
#[allow(
    clippy::disallowed_methods,
    reason = "the driver's shell reads the clock"
)]
fn clock() -> Instant {
    Instant::now()
}

impl Shell {
    /// The loop: the one place of the driver that reads the clock.
    async fn run(mut self) {
        loop {
            let now = clock();
            self.machine.handle_timeout(now);
            self.carry_out(now);
            self.arm_sleep(now);
            let wake = self.next_wake().await;
            let now = clock();
            match wake {
                Wake::Command(None | Some(Command::Shutdown)) => break,
                Wake::Command(Some(command)) => self.command(now, command),
                Wake::Signal(None) => {
                    tracing::warn!("tracker connection closed");
                    self.signal_events = None;
                }
                Wake::Signal(Some(message)) => {
                    self.machine.handle_signal(now, unix_seconds(), message);
                }
                Wake::Channel(peer, Some(ChannelEvent::Data(data))) => {
                    self.machine.handle_channel_data(now, peer, &data);
                }
                Wake::Channel(peer, Some(ChannelEvent::Writable(writable))) => {
                    self.machine.handle_channel_writable(now, peer, writable);
                }
                Wake::Channel(peer, None) => {
                    self.channels.remove(&peer);
                    self.machine.handle_channel_closed(now, peer);
                }
                Wake::Done(done) => self.done(now, done),
                Wake::Timer => {}
            }
        }
        let now = clock();
        self.machine.shutdown(now);
        self.carry_out(now);
        self.finish_writes().await;
        tracing::info!("driver stopped");
    }

    /// Verified pieces must reach the store: finishes the writes under way.
    async fn finish_writes(&mut self) {
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
    }

    fn arm_sleep(&mut self, now: Instant) {
        match self.machine.poll_timeout() {
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
                    1 => ready_item(&mut self.peer_events, cx)
                        .map(|(peer, event)| Wake::Channel(peer, event)),
                    2 => ready_item(&mut self.tasks, cx).map(Wake::Done),
                    3 => ready_item(&mut self.writes, cx).map(Wake::Done),
                    _ => match &mut self.sleep {
                        Some((_, sleep)) => sleep.poll_unpin(cx).map(|()| Wake::Timer),
                        None => Poll::Pending,
                    },
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
                if !self.machine.can_add(&spec.info.info_hash()) {
                    let _ = reply.send(Err(AddTorrentError::Duplicate));
                    return;
                }
                let store = spec.store.clone();
                self.tasks.push(Box::pin(async move {
                    let held = store.verified(&spec.info).await;
                    Done::Loaded(spec, held, reply)
                }));
            }
            Command::FetchMetadata(info_hash, reply) => {
                match self.machine.add_fetch(now, info_hash) {
                    Ok(()) => {
                        self.metadata_waiters.insert(info_hash, reply);
                    }
                    Err(_) => {
                        let _ = reply.send(Err(FetchMetadataError::Duplicate));
                    }
                }
            }
            Command::Playback(info_hash, playback) => {
                self.machine.set_playback(now, info_hash, playback);
            }
            Command::Pause(info_hash, paused) => self.machine.pause(now, info_hash, paused),
            Command::Stats(info_hash, reply) => {
                let _ = reply.send(self.machine.stats(now, info_hash));
            }
            Command::Remove(info_hash, reply) => {
                let _ = reply.send(self.machine.remove_torrent(now, info_hash));
            }
            Command::Peers(info_hash, reply) => {
                let _ = reply.send(self.machine.peers(now, info_hash));
            }
            Command::UploadLimit(info_hash, limit) => {
                self.machine.set_upload_limit(info_hash, limit);
            }
            Command::Subscribe(subscriber) => self.subscribers.push(subscriber),
            Command::Shutdown => {}
        }
    }
}

/// The next item of a stream set, or pending while it is empty (an empty
/// set would report its end).
fn ready_item<S: futures::Stream + Unpin>(
    set: &mut S,
    cx: &mut std::task::Context<'_>,
) -> Poll<S::Item> {
    match set.poll_next_unpin(cx) {
        Poll::Ready(Some(item)) => Poll::Ready(item),
        _ => Poll::Pending,
    }
}
