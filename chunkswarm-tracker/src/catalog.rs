//! Catalog search: what can be watched, behind a trait so that a remote
//! catalog (a movie-search API) can stand beside or replace the library.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::library::{Library, MediaFile};
use crate::urls::Urls;

/// One search result. The tracker fills in `peers` and `seeders` from its
/// live swarms for entries that have an `info_hash`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CatalogEntry {
    /// The title: from the sidecar, else the file name.
    pub title: String,
    /// Release year, if known.
    pub year: Option<i32>,
    /// A description, if known.
    pub description: Option<String>,
    /// A poster image URL, if known.
    pub poster: Option<String>,
    /// Path of the file in the library, if it is there.
    pub file: Option<String>,
    /// Size in bytes, if known.
    pub size: Option<u64>,
    /// Duration in seconds, if known.
    pub duration_seconds: Option<f64>,
    /// Where the media can be fetched over HTTP (the web seed).
    pub media_url: Option<String>,
    /// Where its `.torrent` is.
    pub torrent_url: Option<String>,
    /// The infohash in hex, once the torrent is made.
    pub info_hash: Option<String>,
    /// Its magnet link, once the torrent is made: infohash, name, length,
    /// tracker, web seed (`ws`) and the `.torrent`'s URL (`xs`), so a client
    /// holding only the link starts at once from the origin.
    pub magnet: Option<String>,
    /// Peers in its swarm now.
    pub peers: Option<u32>,
    /// Seeders in its swarm now.
    pub seeders: Option<u32>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog's backend could not be reached or answered badly.
    #[error("catalog backend failed: {0}")]
    Backend(String),
}

/// The future a [`Catalog`] search returns.
pub type SearchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<CatalogEntry>, CatalogError>> + Send + 'a>>;

/// Something that answers catalog searches.
pub trait Catalog: Send + Sync + fmt::Debug {
    /// Up to `limit` entries matching `query` (every whitespace-separated
    /// term, case-insensitively); an empty query matches everything.
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> SearchFuture<'a>;
}

/// The catalog of the tracker's own media library.
#[derive(Debug)]
pub(crate) struct LibraryCatalog {
    library: Option<Arc<Library>>,
    urls: Arc<Urls>,
}

impl LibraryCatalog {
    pub(crate) fn new(library: Option<Arc<Library>>, urls: Arc<Urls>) -> Self {
        Self { library, urls }
    }

    fn entry(&self, library: &Library, file: &MediaFile) -> CatalogEntry {
        let name = file.rel.rsplit('/').next().unwrap_or(&file.rel);
        let sidecar = &file.sidecar;
        let poster = sidecar.poster.as_ref().map(|p| {
            if p.contains("://") {
                p.clone()
            } else {
                self.urls.media(p.trim_start_matches('/'))
            }
        });
        let torrent = library.torrents.peek(file);
        let torrent_url = self.urls.torrent(&file.rel);
        let magnet = torrent.as_ref().map(|t| {
            t.magnet
                .clone()
                .with_source(torrent_url.clone())
                .to_string()
        });
        CatalogEntry {
            title: sidecar.title.clone().unwrap_or_else(|| name.to_owned()),
            year: sidecar.year,
            description: sidecar.description.clone(),
            poster,
            file: Some(file.rel.clone()),
            size: Some(file.size),
            duration_seconds: sidecar.duration.filter(|d| d.is_finite() && *d >= 0.0),
            media_url: Some(self.urls.media(&file.rel)),
            torrent_url: Some(torrent_url),
            info_hash: torrent.map(|t| t.info_hash.to_hex()),
            magnet,
            peers: None,
            seeders: None,
        }
    }
}

/// Whether every term of the (lowercased) query occurs in one of the texts.
pub(crate) fn matches(terms: &[String], texts: &[&str]) -> bool {
    let haystack: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
    terms
        .iter()
        .all(|term| haystack.iter().any(|h| h.contains(term.as_str())))
}

impl Catalog for LibraryCatalog {
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> SearchFuture<'a> {
        Box::pin(async move {
            let Some(library) = &self.library else {
                return Ok(Vec::new());
            };
            let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
            let files = library.files().await;
            let mut found: Vec<CatalogEntry> = files
                .iter()
                .filter(|f| {
                    let s = &f.sidecar;
                    let texts = [
                        f.rel.as_str(),
                        s.title.as_deref().unwrap_or(""),
                        s.description.as_deref().unwrap_or(""),
                    ];
                    matches(&terms, &texts)
                })
                .map(|f| self.entry(library, f))
                .collect();
            found.sort_by_key(|entry| entry.title.to_lowercase());
            found.truncate(limit);
            Ok(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_terms_must_match_somewhere() {
        let terms = |q: &str| {
            q.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        };
        assert!(matches(&terms("big BUNNY"), &["Big Buck Bunny", ""]));
        assert!(matches(
            &terms("bunny 2008"),
            &["Big Buck Bunny", "from 2008"]
        ));
        assert!(!matches(&terms("bunny sintel"), &["Big Buck Bunny", ""]));
        assert!(matches(&terms(""), &["anything"]));
    }
}
