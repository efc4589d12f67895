//! The WebSocket tracker client (tokio-tungstenite; `wss://` through rustls).

use std::sync::Arc;

use futures::channel::mpsc;
use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

use crate::driver::signal::{SignalIn, SignalOut};
use crate::driver::{Signaling, SignalingError, SignalingLink};

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

/// Connects to the tracker at `url` (`ws://` or `wss://`) and spawns the task
/// that carries messages both ways until either side closes. Messages the
/// driver cannot read are logged and skipped.
pub async fn connect_tracker(url: &str) -> Result<SignalingLink, TrackerConnectError> {
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| TrackerConnectError::Connect(e.to_string()))?;
    let (queue, mut outgoing) = mpsc::unbounded::<SignalOut>();
    let (incoming, events) = mpsc::unbounded::<SignalIn>();
    let url = url.to_owned();
    tokio::spawn(async move {
        let (mut write, mut read) = socket.split();
        loop {
            tokio::select! {
                message = outgoing.next() => {
                    let Some(message) = message else { break };
                    let text = message.to_json();
                    if let Err(e) = write.send(Message::text(text)).await {
                        tracing::warn!(%url, error = %e, "tracker write failed");
                        break;
                    }
                }
                frame = read.next() => match frame {
                    Some(Ok(Message::Text(text))) => match SignalIn::parse(text.as_str()) {
                        Ok(message) => {
                            if incoming.unbounded_send(message).is_err() {
                                break;
                            }
                        }
                        Err(e) => tracing::debug!(%url, error = %e, "tracker message skipped"),
                    },
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(%url, error = %e, "tracker read failed");
                        break;
                    }
                },
            }
        }
        // Deliver what was queued last (a `stopped` announce) before closing.
        while let Ok(message) = outgoing.try_recv() {
            if write.send(Message::text(message.to_json())).await.is_err() {
                break;
            }
        }
        let _ = write.close().await;
        tracing::debug!(%url, "tracker connection closed");
    });
    Ok(SignalingLink {
        sender: Arc::new(WsSender { queue }),
        events: Box::pin(events),
    })
}
