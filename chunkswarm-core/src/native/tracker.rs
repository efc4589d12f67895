//! The WebSocket tracker client (tokio-tungstenite; `wss://` through rustls),
//! reconnecting with backoff when the connection drops.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::driver::signal::{SignalIn, SignalOut};
use crate::driver::{Signaling, SignalingError, SignalingLink};

/// The first wait before connecting again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why the tracker could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum TrackerConnectError {
    /// The WebSocket handshake (or TCP, TLS) failed.
    #[error("tracker connection failed: {0}")]
    Connect(String),
}

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
/// first attempt fails, and spawns the task that carries messages both ways.
/// If the connection drops later the task reconnects (see [`tracker_link`]).
pub async fn connect_tracker(url: &str) -> Result<SignalingLink, TrackerConnectError> {
    let socket = connect(url).await?;
    Ok(spawn_link(url, Some(socket)))
}

/// A tracker link that connects in the background and never gives up: after
/// every (re)connection it reports [`SignalIn::Reconnected`], so the driver
/// announces again. Messages sent while disconnected are dropped; the
/// driver's re-announce replaces them. Use it when the tracker may be down
/// at start and the download should go on from the web seed meanwhile.
pub fn tracker_link(url: &str) -> SignalingLink {
    spawn_link(url, None)
}

async fn connect(url: &str) -> Result<Socket, TrackerConnectError> {
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| TrackerConnectError::Connect(e.to_string()))?;
    Ok(socket)
}

fn spawn_link(url: &str, first: Option<Socket>) -> SignalingLink {
    let (queue, outgoing) = mpsc::unbounded::<SignalOut>();
    let (incoming, events) = mpsc::unbounded::<SignalIn>();
    tokio::spawn(keep_connected(url.to_owned(), first, outgoing, incoming));
    SignalingLink {
        sender: Arc::new(WsSender { queue }),
        events: Box::pin(events),
    }
}

/// How a session with the tracker ended.
enum Ended {
    /// The driver dropped its sender (or stopped reading): we are done.
    DriverGone,
    /// The connection broke.
    Lost,
}

async fn keep_connected(
    url: String,
    mut first: Option<Socket>,
    mut outgoing: mpsc::UnboundedReceiver<SignalOut>,
    incoming: mpsc::UnboundedSender<SignalIn>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let socket = match first.take() {
            Some(socket) => socket,
            None => match connect(&url).await {
                Ok(socket) => {
                    // Whatever was queued while away is stale.
                    while outgoing.try_recv().is_ok() {}
                    if incoming.unbounded_send(SignalIn::Reconnected).is_err() {
                        return;
                    }
                    tracing::info!(%url, "tracker connected");
                    socket
                }
                Err(e) => {
                    tracing::debug!(%url, error = %e, ?backoff, "tracker unreachable");
                    if backoff == FIRST_BACKOFF
                        && incoming.unbounded_send(SignalIn::Disconnected).is_err()
                    {
                        return;
                    }
                    if wait_dropping(&mut outgoing, backoff).await.is_err() {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        backoff = FIRST_BACKOFF;
        match session(&url, socket, &mut outgoing, &incoming).await {
            Ended::DriverGone => return,
            Ended::Lost => {
                tracing::warn!(%url, "tracker connection lost; reconnecting");
                if incoming.unbounded_send(SignalIn::Disconnected).is_err()
                    || wait_dropping(&mut outgoing, backoff).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Sleeps for `duration`, discarding messages meanwhile; `Err` when the
/// driver has gone.
async fn wait_dropping(
    outgoing: &mut mpsc::UnboundedReceiver<SignalOut>,
    duration: Duration,
) -> Result<(), ()> {
    let sleep = tokio::time::sleep(duration);
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
