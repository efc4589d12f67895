//! Where a torrent comes from: a `.torrent` file, a URL, bytes, or a
//! magnet link (its `.torrent` fetched from its `xs`, or its metadata from
//! the swarm's peers).

use std::path::PathBuf;
use std::time::Duration;

use crate::driver::{FetchMetadataError, HttpError};
use crate::magnet::{Magnet, MagnetError};
use crate::metainfo::{Metainfo, MetainfoError};
use crate::native::http_get;

/// Torrent files larger than this are refused (a 1 TiB file in 1 MiB pieces
/// has a 20 MiB piece list).
pub const MAX_TORRENT_BYTES: usize = 64 << 20;

/// What [`Client::add`](super::Client::add) takes. `From<&str>` reads
/// `http://` and `https://` as a URL, `magnet:` as a magnet link, and
/// anything else as a path.
#[derive(Debug, Clone)]
pub enum TorrentSource {
    /// A `.torrent` file.
    Path(PathBuf),
    /// The URL of a `.torrent` (`http://` or `https://`).
    Url(String),
    /// A magnet link. With an http(s) `xs` (the URL of its `.torrent`) the
    /// torrent comes from there; without one, its metadata comes from the
    /// peers its WebSocket trackers introduce (BEP 9). Its trackers and web
    /// seeds join the torrent's own.
    Magnet(String),
    /// The bytes of a `.torrent`.
    Bytes(Vec<u8>),
    /// A parsed torrent.
    Metainfo(Box<Metainfo>),
}

impl From<&str> for TorrentSource {
    fn from(location: &str) -> Self {
        let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Self::Url(location.to_owned())
        } else if lower.starts_with("magnet:") {
            Self::Magnet(location.to_owned())
        } else {
            Self::Path(location.into())
        }
    }
}

impl From<String> for TorrentSource {
    fn from(location: String) -> Self {
        Self::from(location.as_str())
    }
}

impl From<PathBuf> for TorrentSource {
    fn from(path: PathBuf) -> Self {
        Self::Path(path)
    }
}

impl From<&std::path::Path> for TorrentSource {
    fn from(path: &std::path::Path) -> Self {
        Self::Path(path.to_owned())
    }
}

impl From<Vec<u8>> for TorrentSource {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<Metainfo> for TorrentSource {
    fn from(meta: Metainfo) -> Self {
        Self::Metainfo(Box::new(meta))
    }
}

/// Why a torrent could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        error: std::io::Error,
    },
    /// The `.torrent` could not be fetched.
    #[error("cannot fetch {url}: {error}")]
    Fetch {
        /// Its URL.
        url: String,
        /// What failed.
        #[source]
        error: HttpError,
    },
    /// Larger than [`MAX_TORRENT_BYTES`].
    #[error("{0} bytes: too big for a torrent")]
    TooLarge(u64),
    /// Not a valid torrent.
    #[error("not a valid torrent: {0}")]
    Invalid(#[from] MetainfoError),
    /// Not a valid magnet link, or its torrent does not match it.
    #[error("magnet link: {0}")]
    Magnet(#[from] MagnetError),
    /// The magnet link names neither a `.torrent` URL (`xs`) nor a
    /// WebSocket tracker whose peers could give its metadata.
    #[error(
        "the magnet link has no http(s) `xs` naming its .torrent and no WebSocket tracker (`tr`) to ask peers for its metadata"
    )]
    MagnetWithoutSource,
    /// No peer gave the magnet link's metadata in time.
    #[error("no peer gave the torrent's metadata within {0:?}")]
    MetadataTimeout(Duration),
    /// Peers gave metadata that hashes right but is not a usable torrent,
    /// or the fetch stopped.
    #[error("metadata from peers: {0}")]
    Metadata(#[from] FetchMetadataError),
}

impl TorrentSource {
    /// The magnet link whose metadata must come from peers: a magnet link
    /// without an http(s) `xs`. `None` for every other source.
    pub fn magnet_without_torrent_url(&self) -> Result<Option<Magnet>, LoadError> {
        let Self::Magnet(link) = self else {
            return Ok(None);
        };
        let magnet = Magnet::parse(link)?;
        Ok(torrent_url(&magnet).is_none().then_some(magnet))
    }

    /// Reads the torrent. Reading a file runs on tokio's blocking pool.
    pub async fn load(self, timeout: Duration) -> Result<Metainfo, LoadError> {
        match self {
            Self::Path(path) => {
                let read = tokio::fs::read(&path).await;
                let bytes = read.map_err(|error| LoadError::Read { path, error })?;
                parse(&bytes)
            }
            Self::Url(url) => parse(&fetch(&url, timeout).await?),
            Self::Magnet(link) => {
                let magnet = Magnet::parse(&link)?;
                let url = torrent_url(&magnet).ok_or(LoadError::MagnetWithoutSource)?;
                let meta = parse(&fetch(url, timeout).await?)?;
                Ok(magnet.resolve(meta)?)
            }
            Self::Bytes(bytes) => parse(&bytes),
            Self::Metainfo(meta) => Ok(*meta),
        }
    }
}

/// The first http(s) `xs` of a magnet link.
fn torrent_url(magnet: &Magnet) -> Option<&String> {
    magnet
        .sources()
        .iter()
        .find(|u| u.starts_with("http://") || u.starts_with("https://"))
}

async fn fetch(url: &str, timeout: Duration) -> Result<bytes::Bytes, LoadError> {
    http_get(url, MAX_TORRENT_BYTES, timeout)
        .await
        .map_err(|error| LoadError::Fetch {
            url: url.to_owned(),
            error,
        })
}

fn parse(bytes: &[u8]) -> Result<Metainfo, LoadError> {
    if bytes.len() > MAX_TORRENT_BYTES {
        return Err(LoadError::TooLarge(bytes.len() as u64));
    }
    Ok(Metainfo::from_bytes(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_read_as_urls_magnets_or_paths() {
        assert!(matches!(
            TorrentSource::from("HTTPS://x/a.torrent"),
            TorrentSource::Url(_)
        ));
        assert!(matches!(
            TorrentSource::from("magnet:?xt=urn:btih:00"),
            TorrentSource::Magnet(_)
        ));
        assert!(matches!(
            TorrentSource::from("film.torrent"),
            TorrentSource::Path(_)
        ));
        assert!(matches!(TorrentSource::from("h"), TorrentSource::Path(_)));
    }

    #[tokio::test]
    async fn bad_input_is_an_error_not_a_panic() {
        let t = Duration::from_secs(1);
        let missing = TorrentSource::from("/nonexistent/x.torrent").load(t).await;
        assert!(
            matches!(&missing, Err(LoadError::Read { error, .. }) if error.kind() == std::io::ErrorKind::NotFound),
            "{missing:?}"
        );
        let garbage = TorrentSource::Bytes(b"d4:spam".to_vec()).load(t).await;
        assert!(matches!(garbage, Err(LoadError::Invalid(_))), "{garbage:?}");
        let no_xs =
            TorrentSource::from("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567")
                .load(t)
                .await;
        assert!(
            matches!(no_xs, Err(LoadError::MagnetWithoutSource)),
            "{no_xs:?}"
        );
    }
}
