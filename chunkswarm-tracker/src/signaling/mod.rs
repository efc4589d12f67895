//! WebSocket signaling: the WebTorrent tracker protocol plus chunkswarm's
//! piece reports. See the crate docs for the messages.

mod connection;
mod handle;
pub(crate) mod ids;
pub(crate) mod message;
pub(crate) mod outbox;
pub(crate) mod reply;
mod websocket;

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};

use crate::Tracker;
use crate::metrics::Rejection;
use crate::serve::ClientIp;

/// `GET /announce` (and `GET /`): upgrades to a WebSocket after the admission
/// checks (shutdown, address rate, connection limits).
pub(crate) async fn upgrade(
    State(tracker): State<Tracker>,
    ClientIp(ip): ClientIp,
    mut request: Request,
) -> Response {
    let Some(key) = websocket_key(&request) else {
        let text = "chunkswarm tracker: connect with a WebSocket to announce\n";
        return (StatusCode::UPGRADE_REQUIRED, text).into_response();
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
    let upgrading = hyper::upgrade::on(&mut request);
    drop(request);
    tokio::spawn(connection::run(tracker.clone(), upgrading, slot));
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, key),
        ],
    )
        .into_response()
}

/// The `Sec-WebSocket-Accept` for a WebSocket opening handshake (RFC 6455
/// 4.2.1: a GET with `Connection: upgrade`, `Upgrade: websocket`, version
/// 13 and a key); `None` for any other request.
fn websocket_key(request: &Request) -> Option<HeaderValue> {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let upgrade = request.method() == Method::GET
        && request.version() == Version::HTTP_11
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    if !upgrade || key.len() != 24 {
        return None;
    }
    HeaderValue::from_str(&websocket::accept_key(key.as_bytes())).ok()
}

/// See [`crate::fuzzing::websocket_frames`].
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_websocket_frames(bytes: &[u8], split: usize, max: usize) -> usize {
    let read = |reads: &[&[u8]]| {
        let mut reader = websocket::Reader::new(tokio::io::empty(), max);
        let mut messages = Vec::new();
        for piece in reads {
            let failed = reader.absorb(&mut piece.to_vec()).is_err();
            messages.extend(reader.take_ready());
            if failed {
                break;
            }
        }
        messages
    };
    let split = split.min(bytes.len());
    let in_two = read(&[&bytes[..split], &bytes[split..]]);
    let in_one = read(&[bytes]);
    assert_eq!(in_one, in_two, "frames read differently when split");
    in_one.len()
}
