//! Torrents of the library's files, made once and cached.
//!
//! A torrent is keyed by the file's canonical path, size and modification
//! time, so a changed file gets a new torrent. Hashing runs on the blocking
//! pool, one file at a time, and concurrent requests for the same file share
//! one hashing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use chunkswarm_core::magnet::Magnet;
use chunkswarm_core::metainfo::{CreateError, InfoHash, TorrentBuilder};
use tokio::sync::{OnceCell, Semaphore};

use crate::library::MediaFile;

/// Why a torrent could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TorrentError {
    /// Reading or hashing the file failed.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// The hashing task did not finish.
    #[error("hashing task failed")]
    Task,
}

/// A torrent of one library file.
#[derive(Debug)]
pub(crate) struct Torrent {
    /// The bencoded `.torrent`.
    pub(crate) bytes: Bytes,
    pub(crate) info_hash: InfoHash,
    pub(crate) piece_count: u32,
    /// Its magnet link: infohash, name, length, tracker and web seed (the
    /// catalog adds the `.torrent`'s URL as `xs`).
    pub(crate) magnet: Magnet,
}

#[derive(Debug)]
struct Slot {
    size: u64,
    modified: SystemTime,
    torrent: OnceCell<Arc<Torrent>>,
}

/// The cache.
#[derive(Debug)]
pub(crate) struct TorrentCache {
    piece_length: u32,
    slots: Mutex<HashMap<PathBuf, Arc<Slot>>>,
    piece_counts: RwLock<HashMap<InfoHash, u32>>,
    hashing: Semaphore,
}

impl TorrentCache {
    /// A cache making torrents with pieces of `piece_length` bytes.
    pub(crate) fn new(piece_length: u32) -> Self {
        Self {
            piece_length,
            slots: Mutex::new(HashMap::new()),
            piece_counts: RwLock::new(HashMap::new()),
            hashing: Semaphore::new(1),
        }
    }
}

impl TorrentCache {
    fn slot(&self, file: &MediaFile) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = |s: &Slot| s.size == file.size && s.modified == file.modified;
        match slots.get(&file.path) {
            Some(slot) if fresh(slot) => Arc::clone(slot),
            _ => {
                let slot = Arc::new(Slot {
                    size: file.size,
                    modified: file.modified,
                    torrent: OnceCell::new(),
                });
                slots.insert(file.path.clone(), Arc::clone(&slot));
                slot
            }
        }
    }

    /// The torrent if it is already made.
    pub(crate) fn peek(&self, file: &MediaFile) -> Option<Arc<Torrent>> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.get(&file.path)?;
        let fresh = slot.size == file.size && slot.modified == file.modified;
        fresh.then(|| slot.torrent.get().cloned()).flatten()
    }

    /// The torrent, made now if needed, with this tracker and web seed.
    /// `built` counts the torrents actually hashed.
    pub(crate) async fn get(
        &self,
        file: &MediaFile,
        announce: &str,
        web_seed: &str,
        built: &AtomicU64,
    ) -> Result<Arc<Torrent>, TorrentError> {
        let slot = self.slot(file);
        let torrent = slot
            .torrent
            .get_or_try_init(|| async {
                let _permit = self
                    .hashing
                    .acquire()
                    .await
                    .map_err(|_| TorrentError::Task)?;
                let path = file.path.clone();
                let builder = TorrentBuilder::new()
                    .piece_length(self.piece_length)
                    .announce(announce)
                    .web_seed(web_seed);
                let metainfo = tokio::task::spawn_blocking(move || builder.build_from_path(&path))
                    .await
                    .map_err(|_| TorrentError::Task)??;
                let torrent = Torrent {
                    bytes: Bytes::from(metainfo.to_bytes()),
                    info_hash: metainfo.info_hash(),
                    piece_count: metainfo.info().layout().piece_count(),
                    magnet: Magnet::from_metainfo(&metainfo),
                };
                built.fetch_add(1, Ordering::Relaxed);
                tracing::info!(file = %file.rel, info_hash = %torrent.info_hash, "made torrent");
                Ok::<_, TorrentError>(Arc::new(torrent))
            })
            .await?;
        self.piece_counts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(torrent.info_hash, torrent.piece_count);
        Ok(Arc::clone(torrent))
    }

    /// The piece count of a torrent this cache made.
    pub(crate) fn piece_count(&self, info_hash: &InfoHash) -> Option<u32> {
        self.piece_counts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(info_hash)
            .copied()
    }
}
