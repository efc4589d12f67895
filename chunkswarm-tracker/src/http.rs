//! Middleware for the plain HTTP endpoints: per-address rate limiting and CORS.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Tracker;
use crate::metrics::Rejection;
use crate::serve::ClientIp;

/// Takes a token from the client's address, or answers 429.
pub(crate) async fn rate_limit(
    State(tracker): State<Tracker>,
    ClientIp(ip): ClientIp,
    request: Request,
    next: Next,
) -> Response {
    let inner = &tracker.inner;
    if !inner.limiter.take_for(ip, Instant::now()) {
        inner.metrics.reject(Rejection::RateLimited);
        return (StatusCode::TOO_MANY_REQUESTS, "rate limited\n").into_response();
    }
    next.run(request).await
}

/// The request headers a preflight allows when it names none: what browsers
/// and WebTorrent's web-seed requests send to a media origin.
const DEFAULT_ALLOWED_HEADERS: &str = "Range, If-Range, If-None-Match, If-Modified-Since, \
     If-Match, If-Unmodified-Since, Cache-Control, Pragma, Accept, Accept-Language, \
     Content-Language, Content-Type";

/// Longest `Access-Control-Request-Headers` echoed back.
const MAX_REQUESTED_HEADERS: usize = 1024;

/// The preflight's `Access-Control-Allow-Headers`: the headers the browser
/// asks for, when it names a well-formed list (everything the origin serves is
/// public and read-only, so no request header is a risk), else the default.
fn allowed_headers(requested: Option<HeaderValue>) -> HeaderValue {
    let well_formed = |value: &HeaderValue| {
        value.len() <= MAX_REQUESTED_HEADERS
            && value.to_str().is_ok_and(|list| {
                list.split(',').all(|name| {
                    let name = name.trim();
                    !name.is_empty() && header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                })
            })
    };
    requested
        .filter(well_formed)
        .unwrap_or(HeaderValue::from_static(DEFAULT_ALLOWED_HEADERS))
}

/// Adds CORS headers and answers preflights, if configured.
pub(crate) async fn cors(State(tracker): State<Tracker>, request: Request, next: Next) -> Response {
    let Some(origin) = tracker.inner.config.cors_allow_origin.as_deref() else {
        return next.run(request).await;
    };
    let Ok(origin) = HeaderValue::from_str(origin) else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS;
    let requested = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Range, Content-Length, Accept-Ranges, ETag"),
    );
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            allowed_headers(requested),
        );
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    response
}
