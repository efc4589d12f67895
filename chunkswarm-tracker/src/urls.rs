//! The public URLs the tracker writes into torrents and API answers.

use std::net::SocketAddr;
use std::sync::OnceLock;

use crate::origin::path::percent_encode_path;

/// The public base URL, fixed once: from the configuration, or from the
/// address [`serve`](crate::serve) listens on.
#[derive(Debug, Default)]
pub(crate) struct Urls {
    base: OnceLock<String>,
}

impl Urls {
    /// URLs under a configured base (a trailing `/` is dropped).
    pub(crate) fn new(configured: Option<&str>) -> Self {
        let urls = Self::default();
        if let Some(base) = configured {
            let _ = urls.base.set(base.trim_end_matches('/').to_owned());
        }
        urls
    }

    /// Sets the base from the listening address unless one is set.
    pub(crate) fn default_to(&self, addr: SocketAddr, tls: bool) {
        let scheme = if tls { "https" } else { "http" };
        let host = match addr {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() => format!("127.0.0.1:{}", v4.port()),
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => format!("[::1]:{}", v6.port()),
            other => other.to_string(),
        };
        let _ = self.base.set(format!("{scheme}://{host}"));
    }

    /// The base URL, e.g. `https://media.example`.
    pub(crate) fn base(&self) -> &str {
        self.base.get().map_or("http://localhost", String::as_str)
    }

    /// The WebSocket tracker URL: the base with `ws`/`wss` and `/announce`.
    pub(crate) fn announce(&self) -> String {
        let base = self.base();
        let ws = match base.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => format!("ws://{base}"),
        };
        format!("{ws}/announce")
    }

    /// The origin URL of a library file.
    pub(crate) fn media(&self, rel: &str) -> String {
        format!("{}/media/{}", self.base(), percent_encode_path(rel))
    }

    /// The `.torrent` URL of a library file.
    pub(crate) fn torrent(&self, rel: &str) -> String {
        format!(
            "{}/torrents/{}.torrent",
            self.base(),
            percent_encode_path(rel)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_base() {
        let urls = Urls::new(Some("https://t.example/"));
        urls.default_to("0.0.0.0:80".parse().unwrap(), false);
        assert_eq!(urls.announce(), "wss://t.example/announce");
        assert_eq!(urls.media("a b.webm"), "https://t.example/media/a%20b.webm");
        assert_eq!(
            urls.torrent("d/x.mp4"),
            "https://t.example/torrents/d/x.mp4.torrent"
        );

        let urls = Urls::new(None);
        urls.default_to("0.0.0.0:8000".parse().unwrap(), false);
        assert_eq!(urls.announce(), "ws://127.0.0.1:8000/announce");
    }
}
