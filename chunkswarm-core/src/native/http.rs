//! The web seed over HTTP/1.1 (hyper), with TLS by rustls and ring.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::header::{HeaderValue, RANGE};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::driver::{HttpError, HttpOrigin};

/// Why a web seed URL was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebSeedError {
    /// Not an `http://` or `https://` URL.
    #[error("not an http(s) URL: {0}")]
    BadUrl(String),
}

/// A web seed (BEP 19): `GET` with `Range` on one URL serving the content.
#[derive(Debug, Clone)]
pub struct HttpWebSeed {
    url: Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpWebSeed {
    /// A web seed at `url`; each request may take `timeout` in all.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, WebSeedError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| WebSeedError::BadUrl(url.to_owned()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(WebSeedError::BadUrl(url.to_owned()));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            url: uri,
            client,
            timeout,
        })
    }

    async fn fetch(&self, range: Range<u64>) -> Result<Bytes, HttpError> {
        let expected = range.end - range.start;
        let value = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
        let mut request = Request::get(self.url.clone())
            .body(Empty::new())
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let header =
            HeaderValue::from_str(&value).map_err(|e| HttpError::Transport(e.to_string()))?;
        request.headers_mut().insert(RANGE, header);
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let status = response.status();
        // A 200 is the whole file: usable only if that is what was asked.
        let whole = status == StatusCode::OK && range.start == 0;
        if status != StatusCode::PARTIAL_CONTENT && !whole {
            return Err(HttpError::Status(status.as_u16()));
        }
        let limit = usize::try_from(expected)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?
            .to_bytes();
        if body.len() as u64 != expected {
            return Err(HttpError::Length {
                expected,
                got: body.len() as u64,
            });
        }
        Ok(body)
    }
}

/// GETs a whole small resource (a `.torrent`), refusing bodies over `limit`
/// bytes and anything but `200 OK`.
pub async fn http_get(url: &str, limit: usize, timeout: Duration) -> Result<Bytes, HttpError> {
    let seed = HttpWebSeed::new(url, timeout).map_err(|e| HttpError::Transport(e.to_string()))?;
    let fetch = async {
        let request = Request::get(seed.url.clone())
            .body(Empty::new())
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let response = seed
            .client
            .request(request)
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(HttpError::Status(response.status().as_u16()));
        }
        Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map(|body| body.to_bytes())
            .map_err(|e| HttpError::Transport(e.to_string()))
    };
    match tokio::time::timeout(timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Transport("timed out".into())),
    }
}

#[async_trait]
impl HttpOrigin for HttpWebSeed {
    async fn get_range(&self, range: Range<u64>) -> Result<Bytes, HttpError> {
        if range.start >= range.end {
            return Err(HttpError::Length {
                expected: 0,
                got: 0,
            });
        }
        match tokio::time::timeout(self.timeout, self.fetch(range)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Transport("timed out".into())),
        }
    }
}
