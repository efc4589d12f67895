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
use crate::metainfo::Info;
use crate::web_seed::WebSeedFiles;

/// Why a web seed URL was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebSeedError {
    /// Not an `http://` or `https://` URL.
    #[error("not an http(s) URL: {0}")]
    BadUrl(String),
}

/// A web seed (BEP 19): `GET` with `Range` on the URL of each file.
#[derive(Debug, Clone)]
pub struct HttpWebSeed {
    /// Each file's place in the content and its URL.
    files: Vec<(Range<u64>, Uri)>,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpWebSeed {
    /// A web seed serving the whole content at `url`; each request may take
    /// `timeout` in all.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, WebSeedError> {
        Ok(Self::with_files(
            vec![(0..u64::MAX, parse_url(url)?)],
            timeout,
        ))
    }

    /// The web seed of a torrent's `url-list` entry, as BEP 19 reads it
    /// (see [`WebSeedFiles::for_torrent`]): a single-file torrent is at
    /// `url` (or `url` + name when `url` ends in `/`); a multi-file
    /// torrent's files are at `url/name/path/of/file`. A range across files
    /// becomes one request per file.
    pub fn for_torrent(url: &str, info: &Info, timeout: Duration) -> Result<Self, WebSeedError> {
        let files = WebSeedFiles::for_torrent(url, info)
            .files()
            .iter()
            .map(|(range, url)| Ok((range.clone(), parse_url(url)?)))
            .collect::<Result<_, WebSeedError>>()?;
        Ok(Self::with_files(files, timeout))
    }

    fn with_files(files: Vec<(Range<u64>, Uri)>, timeout: Duration) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            files,
            client,
            timeout,
        }
    }

    /// GETs `range` of the content, file by file.
    async fn fetch_content(&self, range: Range<u64>) -> Result<Bytes, HttpError> {
        let mut parts = self.files.iter().filter_map(|(content, url)| {
            let start = range.start.max(content.start);
            let end = range.end.min(content.end);
            (start < end).then(|| (url, start - content.start..end - content.start))
        });
        let Some((url, first)) = parts.next() else {
            return Err(HttpError::Status(416));
        };
        let mut body = self.fetch(url, first).await?;
        for (url, part) in parts {
            let more = self.fetch(url, part).await?;
            let mut joined = bytes::BytesMut::from(body);
            joined.extend_from_slice(&more);
            body = joined.freeze();
        }
        let expected = range.end - range.start;
        if body.len() as u64 != expected {
            return Err(HttpError::Length {
                expected,
                got: body.len() as u64,
            });
        }
        Ok(body)
    }

    async fn fetch(&self, url: &Uri, range: Range<u64>) -> Result<Bytes, HttpError> {
        let expected = range.end - range.start;
        let value = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
        let mut request = Request::get(url.clone())
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

fn parse_url(url: &str) -> Result<Uri, WebSeedError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| WebSeedError::BadUrl(url.to_owned()))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(WebSeedError::BadUrl(url.to_owned()));
    }
    Ok(uri)
}

/// GETs a whole small resource (a `.torrent`), refusing bodies over `limit`
/// bytes and anything but `200 OK`.
pub async fn http_get(url: &str, limit: usize, timeout: Duration) -> Result<Bytes, HttpError> {
    let uri = parse_url(url).map_err(|e| HttpError::Transport(e.to_string()))?;
    let seed = HttpWebSeed::with_files(Vec::new(), timeout);
    let fetch = async {
        let request = Request::get(uri)
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
        Err(_) => Err(HttpError::TimedOut),
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
        match tokio::time::timeout(self.timeout, self.fetch_content(range)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::TimedOut),
        }
    }
}
