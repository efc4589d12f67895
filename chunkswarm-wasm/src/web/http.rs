//! The web seed (BEP 19) with `fetch`: `GET` with `Range: bytes=a-b`,
//! expecting `206` and exactly the bytes asked for.
//!
//! The body is read as a stream and abandoned as soon as it runs past the
//! range, so a server ignoring `Range` cannot make the page download a whole
//! film into memory; it is read into reused buffers (the `body` module).
//! Each request is aborted (`AbortController`) when its
//! future is dropped (the engine cancelled it) or its timeout passes.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chunkswarm_core::driver::{HttpError, HttpOrigin};
use chunkswarm_core::metainfo::Info;
use chunkswarm_core::web_seed::WebSeedFiles;
use futures::future::{self, Either};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

use super::body::BodyReader;
use super::sleep::Timeout;
use super::{fetch_request, js_error};

/// A web seed: the content at one URL, or a multi-file torrent's files
/// each at its own (BEP 19, planned by [`WebSeedFiles`]).
#[derive(Debug, Clone)]
pub struct FetchWebSeed {
    files: WebSeedFiles,
    timeout: Duration,
}

impl FetchWebSeed {
    /// A web seed serving the whole content at `url` (absolute, or relative
    /// to the page); each request may take `timeout` in all.
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            files: WebSeedFiles::whole(url),
            timeout,
        }
    }

    /// The web seed of a torrent's `url-list` entry, as BEP 19 reads it
    /// ([`WebSeedFiles::for_torrent`]): a multi-file torrent's files are at
    /// `url/name/path/of/file`, and a range across files becomes one
    /// request per file.
    pub fn for_torrent(url: &str, info: &Info, timeout: Duration) -> Self {
        Self {
            files: WebSeedFiles::for_torrent(url, info),
            timeout,
        }
    }

    /// GETs `range` of the content, file by file, joined.
    async fn fetch_content(
        &self,
        range: Range<u64>,
        abort: &AbortController,
    ) -> Result<Bytes, HttpError> {
        let requests = self.files.requests(range.clone());
        if requests.is_empty() {
            return Err(HttpError::Status(416));
        }
        if let [(url, part)] = &requests[..] {
            return fetch_range(url, part.clone(), abort).await;
        }
        let mut joined = Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
        for (url, part) in requests {
            joined.extend_from_slice(&fetch_range(url, part, abort).await?);
        }
        Ok(Bytes::from(joined))
    }
}

fn transport(e: JsValue) -> HttpError {
    HttpError::Transport(js_error(&e))
}

/// Aborts the request when dropped.
struct AbortOnDrop(AbortController);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn fetch_range(
    url: &str,
    range: Range<u64>,
    abort: &AbortController,
) -> Result<Bytes, HttpError> {
    let expected = range.end - range.start;
    let headers = Headers::new().map_err(transport)?;
    headers
        .set("Range", &format!("bytes={}-{}", range.start, range.end - 1))
        .map_err(transport)?;
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_headers(&headers);
    init.set_signal(Some(&abort.signal()));
    let request = Request::new_with_str_and_init(url, &init).map_err(transport)?;
    let response: Response = JsFuture::from(fetch_request(&request))
        .await
        .map_err(transport)?
        .dyn_into()
        .map_err(transport)?;
    let status = response.status();
    // A 200 is the whole file: usable only if that is what was asked.
    let whole = status == 200 && range.start == 0;
    if status != 206 && !whole {
        return Err(HttpError::Status(status));
    }
    let declared = response
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(got) = declared.filter(|&len| len != expected) {
        return Err(HttpError::Length { expected, got });
    }
    let Some(body) = response.body() else {
        return Err(HttpError::Length { expected, got: 0 });
    };
    let capacity = usize::try_from(expected).map_err(|_| HttpError::Length {
        expected,
        got: u64::MAX,
    })?;
    let mut out = Vec::with_capacity(capacity);
    let mut reader = BodyReader::new(&body);
    while reader.read_into(&mut out).await.map_err(transport)? {
        if out.len() as u64 > expected {
            reader.cancel();
            return Err(HttpError::Length {
                expected,
                got: out.len() as u64,
            });
        }
    }
    if out.len() as u64 != expected {
        return Err(HttpError::Length {
            expected,
            got: out.len() as u64,
        });
    }
    Ok(Bytes::from(out))
}

#[async_trait(?Send)]
impl HttpOrigin for FetchWebSeed {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, HttpError> {
        if range.start >= range.end {
            return Err(HttpError::Length {
                expected: 0,
                got: 0,
            });
        }
        let abort = AbortOnDrop(AbortController::new().map_err(transport)?);
        let fetch = Box::pin(self.fetch_content(range, &abort.0));
        match future::select(fetch, Timeout::new(self.timeout)).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => Err(HttpError::Transport("timed out".into())),
        }
    }
}
