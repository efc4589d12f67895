//! The WebSocket tracker client (tokio-tungstenite; `wss://` through rustls),
//! reconnecting when the connection drops as the shared policy of
//! [`driver::reconnect`](crate::driver::reconnect) says (the browser's link
//! follows it too).
//!
//! Time bound: every connection attempt (TCP, TLS and the WebSocket
//! handshake) is given up after [`TRACKER_CONNECT_TIMEOUT`] (or the bound
//! given to [`tracker_link_to`]), so with the tracker down the driver hears
//! [`SignalIn::Disconnected`] (its subscribers
//! [`Event::TrackerFailed`](crate::swarm::Event::TrackerFailed)) at most
//! that long after the link starts.

use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::driver::reconnect::Reconnect;
use crate::driver::signal::{SignalIn, SignalOut};
use crate::driver::{Signaling, SignalingError, SignalingLink, TrackerError};

/// How long one attempt to connect to the tracker may take before it counts
/// as failed ([`TrackerError::TimedOut`]).
pub const TRACKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half: queues messages for the connection's task.
#[derive(Debug)]
struct WsSender {
    queue: mpsc::UnboundedSender<SignalOut>,
}

impl Signaling for WsSender {
    fn send(&self, message: SignalOut) -> Result<(), SignalingError> {
        self.queue
            .unbounded_send(message)
            .map_err(|_| SignalingError::Closed)
    }
}

/// Connects to the tracker at `url` (`ws://` or `wss://`), failing if the
/// first attempt fails (within [`TRACKER_CONNECT_TIMEOUT`]), and spawns the
/// task that carries messages both ways. If the connection drops later the
/// task reconnects (see [`tracker_link`]).
pub async fn connect_tracker(url: &str) -> Result<SignalingLink, TrackerError> {
    let socket = connect(url, TRACKER_CONNECT_TIMEOUT).await?;
    Ok(spawn_link(
        vec![url.to_owned()],
        TRACKER_CONNECT_TIMEOUT,
        Some(socket),
    ))
}

/// A tracker link that connects in the background and never gives up: after
/// every (re)connection it reports [`SignalIn::Reconnected`], so the driver
/// announces again, and after every failure [`SignalIn::Disconnected`] with
/// the reason (the first within [`TRACKER_CONNECT_TIMEOUT`]), then waits as
/// [`Reconnect`] says. Messages sent while disconnected are dropped; the
/// driver's re-announce replaces them.
/// Use it when the tracker may be down at start and the download should go
/// on from the web seed meanwhile.
pub fn tracker_link(url: &str) -> SignalingLink {
    tracker_link_to(&[url.to_owned()], TRACKER_CONNECT_TIMEOUT)
}

/// [`tracker_link`] over several trackers (a torrent's announce list, in
/// order): each failed attempt moves on to the next, so the link stays with
/// the first one that answers. Each attempt may take `connect_timeout`.
///
/// # Panics
///
/// Never; an empty list gives a link that reports
/// [`TrackerError::NoTracker`] once and then stays idle.
pub fn tracker_link_to(urls: &[String], connect_timeout: Duration) -> SignalingLink {
    spawn_link(urls.to_vec(), connect_timeout, None)
}

async fn connect(url: &str, timeout: Duration) -> Result<Socket, TrackerError> {
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(TrackerError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        }),
        Err(_) => Err(TrackerError::TimedOut {
            url: url.to_owned(),
            after: timeout,
        }),
    }
}

fn spawn_link(urls: Vec<String>, timeout: Duration, first: Option<Socket>) -> SignalingLink {
    let (queue, outgoing) = mpsc::unbounded::<SignalOut>();
    let (incoming, events) = mpsc::unbounded::<SignalIn>();
    if urls.is_empty() {
        let _ = incoming.unbounded_send(SignalIn::Disconnected(TrackerError::NoTracker));
        // Keep the stream open (an ended stream means the link is gone for
        // good) as long as the driver holds the sender.
        tokio::spawn(async move {
            let mut outgoing = outgoing;
            while outgoing.next().await.is_some() {}
            drop(incoming);
        });
    } else {
        let link = Link { urls, timeout };
        tokio::spawn(link.keep_connected(first, outgoing, incoming));
    }
    SignalingLink {
        sender: Arc::new(WsSender { queue }),
        events: Box::pin(events),
    }
}

/// Where the link connects, and how long an attempt may take.
struct Link {
    urls: Vec<String>,
    timeout: Duration,
}

/// How a session with the tracker ended.
enum Ended {
    /// The driver dropped its sender (or stopped reading): we are done.
    DriverGone,
    /// The connection broke.
    Lost,
}

impl Link {
    /// Connects, carries messages, and reconnects whenever the connection
    /// fails, trying the trackers in turn; reports each failure.
    async fn keep_connected(
        self,
        mut first: Option<Socket>,
        mut outgoing: mpsc::UnboundedReceiver<SignalOut>,
        incoming: mpsc::UnboundedSender<SignalIn>,
    ) {
        // Jitter differs from link to link (RandomState is seeded per process
        // and per instance).
        let mut policy = Reconnect::new(RandomState::new().hash_one(&self.urls));
        if first.is_some() {
            // Connected before the link existed, so before the driver
            // announced anything: nothing to announce anew.
            let _ = policy.opened();
        }
        let mut turn = 0usize;
        loop {
            let url = &self.urls[turn % self.urls.len()];
            let failure = match first.take() {
                Some(socket) => Ok(session(url, socket, &mut outgoing, &incoming).await),
                None => match connect(url, self.timeout).await {
                    Ok(socket) => {
                        // Whatever was sent while away was dropped or is
                        // stale: the driver announces anew.
                        while outgoing.try_recv().is_ok() {}
                        if incoming.unbounded_send(policy.opened()).is_err() {
                            return;
                        }
                        tracing::info!(%url, "tracker connected");
                        Ok(session(url, socket, &mut outgoing, &incoming).await)
                    }
                    Err(error) => {
                        tracing::debug!(%url, %error, "tracker unreachable");
                        // The next attempt goes to the next tracker.
                        turn += 1;
                        Err(error)
                    }
                },
            };
            let error = match failure {
                Ok(Ended::DriverGone) => return,
                Err(error) => error,
                Ok(Ended::Lost) => {
                    tracing::warn!(%url, "tracker connection lost; reconnecting");
                    TrackerError::Lost { url: url.clone() }
                }
            };
            let (told, until) = policy.failed(now(), error);
            if incoming.unbounded_send(told).is_err()
                || wait_dropping(&mut outgoing, until).await.is_err()
            {
                return;
            }
            let due = policy.retry_due(now());
            debug_assert!(due, "slept until the retry was due");
        }
    }
}

/// The time on tokio's clock, which the waits below sleep on (so a paused
/// test clock moves both).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `until`, discarding messages meanwhile; `Err` when the
/// driver has gone.
async fn wait_dropping(
    outgoing: &mut mpsc::UnboundedReceiver<SignalOut>,
    until: Instant,
) -> Result<(), ()> {
    let sleep = tokio::time::sleep_until(until.into());
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return Ok(()),
            message = outgoing.next() => if message.is_none() { return Err(()) },
        }
    }
}

async fn session(
    url: &str,
    socket: Socket,
    outgoing: &mut mpsc::UnboundedReceiver<SignalOut>,
    incoming: &mpsc::UnboundedSender<SignalIn>,
) -> Ended {
    let (mut write, mut read) = socket.split();
    let ended = loop {
        tokio::select! {
            message = outgoing.next() => {
                let Some(message) = message else { break Ended::DriverGone };
                if let Err(e) = write.send(Message::text(message.to_json())).await {
                    tracing::warn!(%url, error = %e, "tracker write failed");
                    break Ended::Lost;
                }
            }
            frame = read.next() => match frame {
                Some(Ok(Message::Text(text))) => match SignalIn::parse(text.as_str()) {
                    Ok(message) => {
                        if incoming.unbounded_send(message).is_err() {
                            break Ended::DriverGone;
                        }
                    }
                    Err(e) => tracing::debug!(%url, error = %e, "tracker message skipped"),
                },
                Some(Ok(Message::Close(_))) | None => break Ended::Lost,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(%url, error = %e, "tracker read failed");
                    break Ended::Lost;
                }
            },
        }
    };
    if matches!(ended, Ended::DriverGone) {
        // Deliver what was queued last (a `stopped` announce) before closing.
        while let Ok(message) = outgoing.try_recv() {
            if write.send(Message::text(message.to_json())).await.is_err() {
                break;
            }
        }
    }
    let _ = write.close().await;
    tracing::debug!(%url, "tracker connection closed");
    ended
}
