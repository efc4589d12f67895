//! WebSocket signaling: the WebTorrent tracker protocol plus chunkswarm's
//! piece reports. See the crate docs for the messages.

mod connection;
mod handle;
pub(crate) mod ids;
pub(crate) mod message;
pub(crate) mod outbox;
pub(crate) mod reply;

use std::time::Instant;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::Tracker;
use crate::metrics::Rejection;
use crate::serve::ClientIp;

/// Bytes tungstenite reads at a time. Its read buffer starts at this size,
/// grows to the largest message the connection has sent and never shrinks,
/// so it is what an idle connection holds most of: 1 KiB rather than 4 KiB
/// took 1.5 KiB off each idle connection in `tracker_load`.
const READ_BUFFER: usize = 1 << 10;
/// Outgoing bytes gathered before a write; a batch is flushed at its end anyway.
const WRITE_BUFFER: usize = 16 << 10;

/// `GET /announce` (and `GET /`): upgrades to a WebSocket after the admission
/// checks (shutdown, address rate, connection limits).
pub(crate) async fn upgrade(
    State(tracker): State<Tracker>,
    ClientIp(ip): ClientIp,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            let text = "chunkswarm tracker: connect with a WebSocket to announce\n";
            return (StatusCode::UPGRADE_REQUIRED, text).into_response();
        }
    };
    let inner = &tracker.inner;
    if inner.shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let now = Instant::now();
    let address = inner.limiter.address(ip, now);
    if !inner.limiter.take(&address, now) {
        inner.metrics.reject(Rejection::RateLimited);
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    let Some(slot) = inner.limiter.open_connection(address) else {
        inner.metrics.reject(Rejection::TooManyConnections);
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    };
    if !inner.open_connection() {
        inner.metrics.reject(Rejection::TooManyConnections);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let max = inner.config.limits.max_message_bytes;
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade({
            let tracker = tracker.clone();
            move |_| tracker.inner.close_connection()
        })
        .on_upgrade(move |socket| connection::run(tracker, socket, slot))
}
