//! A piece store in memory: for tests, browsers without storage, and seeding
//! content already in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::io::{PieceStore, StoreError};
use crate::layout::PieceIndex;
use crate::metainfo::Info;
use crate::piece_map::Bitfield;

/// Pieces kept in memory. [`verified`](PieceStore::verified) checks each held
/// piece against its hash, so a store filled by hand cannot smuggle in bad data.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pieces: Mutex<BTreeMap<u32, Bytes>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding all of `content`, cut into the torrent's pieces (to
    /// seed). Pieces beyond the content's end are left out.
    pub fn with_content(info: &Info, content: &Bytes) -> Self {
        let layout = info.layout();
        let mut pieces = BTreeMap::new();
        for piece in layout.pieces() {
            let range = layout.piece_range(piece);
            let (Ok(start), Ok(end)) = (usize::try_from(range.start), usize::try_from(range.end))
            else {
                continue;
            };
            if end <= content.len() {
                pieces.insert(piece.get(), content.slice(start..end));
            }
        }
        Self {
            pieces: Mutex::new(pieces),
        }
    }

    /// The content so far: every piece in order, or `None` while a piece is missing.
    pub fn content(&self, info: &Info) -> Option<Vec<u8>> {
        let pieces = self.lock();
        let mut out = Vec::with_capacity(usize::try_from(info.total_length()).ok()?);
        for piece in info.layout().pieces() {
            out.extend_from_slice(pieces.get(&piece.get())?);
        }
        Some(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Bytes>> {
        // A panic elsewhere while holding the lock cannot leave the map half-written.
        self.pieces.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl PieceStore for MemoryStore {
    async fn verified(&self, info: &Info) -> Result<Bitfield, StoreError> {
        let layout = info.layout();
        let mut have = Bitfield::new(layout.piece_count());
        let mut pieces = self.lock();
        pieces.retain(|&index, data| match layout.piece(index) {
            Some(piece) if info.verify_piece(piece, data) => {
                have.insert(piece);
                true
            }
            _ => false,
        });
        Ok(have)
    }

    async fn read(&self, piece: PieceIndex) -> Result<Bytes, StoreError> {
        self.lock()
            .get(&piece.get())
            .cloned()
            .ok_or(StoreError::Missing(piece.get()))
    }

    async fn write(&self, piece: PieceIndex, data: Bytes) -> Result<(), StoreError> {
        self.lock().insert(piece.get(), data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::TorrentBuilder;
    use futures::executor::block_on;

    fn torrent(len: usize) -> (Info, Bytes) {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .build_from_reader("x.bin", content.as_slice())
            .unwrap();
        (meta.info().clone(), Bytes::from(content))
    }

    #[test]
    fn seeded_content_is_verified_and_read_back() {
        let (info, content) = torrent(40_000);
        let store = MemoryStore::with_content(&info, &content);
        let have = block_on(store.verified(&info)).unwrap();
        assert!(have.is_full());
        let last = info.layout().last_piece();
        let data = block_on(store.read(last)).unwrap();
        assert_eq!(data.len(), 40_000 - 2 * (16 << 10));
        assert_eq!(store.content(&info).unwrap(), content.to_vec());
    }

    #[test]
    fn bad_pieces_are_dropped_on_verify() {
        let (info, content) = torrent(40_000);
        let store = MemoryStore::new();
        let first = info.layout().piece(0).unwrap();
        let second = info.layout().piece(1).unwrap();
        block_on(store.write(first, content.slice(0..16 << 10))).unwrap();
        block_on(store.write(second, Bytes::from(vec![0u8; 16 << 10]))).unwrap();
        let have = block_on(store.verified(&info)).unwrap();
        assert_eq!(have.iter_ones().collect::<Vec<_>>(), vec![first]);
        assert!(matches!(
            block_on(store.read(second)),
            Err(StoreError::Missing(1))
        ));
        assert!(store.content(&info).is_none());
    }
}
