//! The HTTP origin: the media library over plain GET with `Range` (the
//! swarm's BEP 19 web seed), and a `.torrent` for each media file.

mod body;
pub(crate) mod mime;
pub(crate) mod path;
pub(crate) mod range;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::Tracker;
use crate::metrics::{Rejection, add};
use body::{Part, file_body};
use path::PathError;
use range::RangeOutcome;

/// `GET`/`HEAD /media/{path}`.
pub(crate) async fn media(
    State(tracker): State<Tracker>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let inner = &tracker.inner;
    add(&inner.metrics.origin_requests, 1);
    let raw = uri.path().strip_prefix("/media/").unwrap_or_default();
    let (file, metadata) = match open(&tracker, raw).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let len = metadata.len();
    let modified = metadata.modified().unwrap_or(UNIX_EPOCH);
    let etag = etag(len, modified);
    let last_modified = httpdate::fmt_http_date(modified);
    let content_type = mime::content_type(&file);

    let mut response_headers = HeaderMap::new();
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            response_headers.insert(name, value);
        }
    };
    set(header::ACCEPT_RANGES, "bytes");
    set(header::ETAG, &etag);
    set(header::LAST_MODIFIED, &last_modified);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::CACHE_CONTROL, "public, max-age=3600");

    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header_text(header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let range_applies = method == Method::GET
        && header_text(header::IF_RANGE).is_none_or(|v| v == etag || v == last_modified);
    let outcome = match header_text(header::RANGE) {
        Some(value) if range_applies => range::evaluate(value, len),
        _ => RangeOutcome::Ignore,
    };
    let head = method == Method::HEAD;
    let (status, parts, total) = match outcome {
        RangeOutcome::Unsatisfiable => {
            set_header(
                &mut response_headers,
                header::CONTENT_RANGE,
                &format!("bytes */{len}"),
            );
            return (StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response();
        }
        RangeOutcome::Ignore => {
            set_header(&mut response_headers, header::CONTENT_TYPE, content_type);
            (StatusCode::OK, vec![Part::File(0..len)], len)
        }
        RangeOutcome::Ranges(ranges) if ranges.len() == 1 => {
            let r = ranges[0].clone();
            set_header(&mut response_headers, header::CONTENT_TYPE, content_type);
            let value = format!("bytes {}-{}/{len}", r.start, r.end - 1);
            set_header(&mut response_headers, header::CONTENT_RANGE, &value);
            let n = r.end - r.start;
            (StatusCode::PARTIAL_CONTENT, vec![Part::File(r)], n)
        }
        RangeOutcome::Ranges(ranges) => {
            let boundary = format!("chunkswarm-{:016x}", fastrand::u64(..));
            let (parts, total) = body::multipart(&ranges, len, content_type, &boundary);
            let value = format!("multipart/byteranges; boundary={boundary}");
            set_header(&mut response_headers, header::CONTENT_TYPE, &value);
            (StatusCode::PARTIAL_CONTENT, parts, total)
        }
    };
    set_header(
        &mut response_headers,
        header::CONTENT_LENGTH,
        &total.to_string(),
    );
    if head {
        return (status, response_headers).into_response();
    }
    let body = match file_body(&file, parts, Arc::clone(&tracker.inner)).await {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open media file");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    (status, response_headers, body).into_response()
}

fn set_header(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn etag(len: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

/// Finds the file a raw path names, or the error response.
async fn open(
    tracker: &Tracker,
    raw: &str,
) -> Result<(std::path::PathBuf, std::fs::Metadata), Response> {
    let inner = &tracker.inner;
    let segments = path::segments(raw).map_err(|e| path_error(tracker, e))?;
    let Some(library) = inner.library.clone() else {
        return Err(StatusCode::NOT_FOUND.into_response());
    };
    let root = library.root().to_path_buf();
    let found = tokio::task::spawn_blocking(move || path::locate(&root, &segments))
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
    let (file, metadata) = found.map_err(|e| path_error(tracker, e))?;
    Ok((file, metadata))
}

fn path_error(tracker: &Tracker, e: PathError) -> Response {
    match e {
        PathError::Malformed => {
            tracker.inner.metrics.reject(Rejection::BadPath);
            (StatusCode::BAD_REQUEST, "bad path\n").into_response()
        }
        PathError::Outside => {
            tracker.inner.metrics.reject(Rejection::BadPath);
            StatusCode::NOT_FOUND.into_response()
        }
        PathError::NotFound => StatusCode::NOT_FOUND.into_response(),
        PathError::Io(e) => {
            tracing::debug!(error = %e, "media lookup failed");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

/// `GET /torrents/{path}.torrent`: the torrent of a library media file,
/// announcing to this tracker with this origin as its web seed.
pub(crate) async fn torrent(State(tracker): State<Tracker>, uri: Uri) -> Response {
    let inner = &tracker.inner;
    let raw = uri.path().strip_prefix("/torrents/").unwrap_or_default();
    let Some(raw) = raw.strip_suffix(".torrent") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let segments = match path::segments(raw) {
        Ok(segments) => segments,
        Err(e) => return path_error(&tracker, e),
    };
    let Some(library) = &inner.library else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let file = match library.media_file(segments).await {
        Ok(file) => file,
        Err(e) => return path_error(&tracker, e),
    };
    let urls = &inner.urls;
    let built = &inner.metrics.torrents_built;
    match library
        .torrents
        .get(&file, &urls.announce(), &urls.media(&file.rel), built)
        .await
    {
        Ok(torrent) => {
            let name = file.rel.rsplit('/').next().unwrap_or("media");
            let disposition = format!(
                "attachment; filename=\"{}.torrent\"",
                name.replace(['"', '\\'], "_")
            );
            let mut headers = HeaderMap::new();
            set_header(
                &mut headers,
                header::CONTENT_TYPE,
                "application/x-bittorrent",
            );
            set_header(&mut headers, header::CONTENT_DISPOSITION, &disposition);
            set_header(&mut headers, header::CACHE_CONTROL, "no-cache");
            (headers, Body::from(torrent.bytes.clone())).into_response()
        }
        Err(e) => {
            tracing::warn!(file = %file.rel, error = %e, "cannot make torrent");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
