//! The memory store: verified pieces in the page's memory, readable by byte
//! range as soon as they arrive. The fallback where OPFS is missing, and the
//! choice for content small enough to keep.
//!
//! The driver writes only pieces that passed their hash check, so whatever
//! [`PieceBuffer::wait_range`] returns is verified content. Readers waiting
//! for bytes are woken by every write and fail once the buffer is closed.

use std::fmt;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use chunkswarm_core::driver::{PieceStore, StoreError};
use chunkswarm_core::layout::{Layout, PieceIndex};
use chunkswarm_core::metainfo::Info;
use chunkswarm_core::piece_map::Bitfield;

use super::held::{HeldPieces, ReadError};

/// Verified pieces of one torrent, kept in memory.
pub struct PieceBuffer {
    held: HeldPieces,
    pieces: Mutex<Vec<Option<Bytes>>>,
}

impl fmt::Debug for PieceBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pieces = self.lock();
        f.debug_struct("PieceBuffer")
            .field("pieces", &pieces.len())
            .field("held", &pieces.iter().flatten().count())
            .finish()
    }
}

impl PieceBuffer {
    /// An empty buffer for content cut as `layout` says.
    pub fn new(layout: Layout) -> Self {
        Self {
            held: HeldPieces::new(layout),
            pieces: Mutex::new(vec![None; layout.piece_count() as usize]),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Option<Bytes>>> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.pieces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Which pieces are held, and the readers waiting on them.
    pub fn held(&self) -> &HeldPieces {
        &self.held
    }

    /// Clamps `start..end` to the content (see [`HeldPieces::clamp`]).
    pub fn clamp(&self, start: u64, end: u64) -> Result<Range<u64>, ReadError> {
        self.held.clamp(start, end)
    }

    /// The bytes of `range` (already clamped) if every piece under it is held.
    fn try_read(&self, range: &Range<u64>) -> Option<Bytes> {
        if range.is_empty() {
            return Some(Bytes::new());
        }
        let layout = self.held.layout();
        let pieces = self.lock();
        let under = self.held.pieces_under(range);
        if let [piece] = under[..] {
            let data = pieces.get(piece.as_usize())?.as_ref()?;
            let offset = layout.piece_offset(piece);
            let from = usize::try_from(range.start - offset).ok()?;
            let to = usize::try_from(range.end - offset).ok()?;
            return data.get(from..to).map(|_| data.slice(from..to));
        }
        let mut out = Vec::with_capacity(usize::try_from(range.end - range.start).ok()?);
        for piece in under {
            let data = pieces.get(piece.as_usize())?.as_ref()?;
            let offset = layout.piece_offset(piece);
            let from = usize::try_from(range.start.saturating_sub(offset)).ok()?;
            let to = usize::try_from(range.end.min(offset + data.len() as u64) - offset).ok()?;
            out.extend_from_slice(data.get(from..to)?);
        }
        Some(Bytes::from(out))
    }

    /// Whether every piece under `range` (clamped) is held now.
    pub fn has_range(&self, range: &Range<u64>) -> bool {
        self.held.has_range(range)
    }

    /// Completes with the bytes of `range` (clamped with [`clamp`](Self::clamp))
    /// once every piece under it is verified.
    pub async fn wait_range(&self, range: Range<u64>) -> Result<Bytes, ReadError> {
        self.held.wait_range(range.clone()).await?;
        self.try_read(&range).ok_or(ReadError::Closed)
    }

    /// Every piece in order, or `None` while one is missing.
    pub fn all_pieces(&self) -> Option<Vec<Bytes>> {
        self.lock().iter().cloned().collect()
    }

    /// Completes with every piece in order once all are verified.
    pub async fn wait_all(&self) -> Result<Vec<Bytes>, ReadError> {
        self.held.wait_all().await?;
        self.all_pieces().ok_or(ReadError::Closed)
    }

    /// Fails every waiting and future reader of missing bytes.
    pub fn close(&self) {
        self.held.close();
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl PieceStore for PieceBuffer {
    async fn verified(&self, info: &Info) -> Result<Bitfield, StoreError> {
        let layout = self.held.layout();
        let mut have = Bitfield::new(layout.piece_count());
        let mut pieces = self.lock();
        for piece in layout.pieces() {
            if let Some(slot) = pieces.get_mut(piece.as_usize()) {
                match slot {
                    Some(data) if info.verify_piece(piece, data) => {
                        have.insert(piece);
                    }
                    _ => *slot = None,
                }
            }
        }
        Ok(have)
    }

    async fn read(&self, piece: PieceIndex) -> Result<Bytes, StoreError> {
        self.lock()
            .get(piece.as_usize())
            .cloned()
            .flatten()
            .ok_or(StoreError::Missing(piece.get()))
    }

    async fn write(&self, piece: PieceIndex, data: Bytes) -> Result<(), StoreError> {
        let layout = self.held.layout();
        if layout.piece(piece.get()) != Some(piece)
            || data.len() != layout.piece_len(piece) as usize
        {
            return Err(StoreError::OutOfRange(piece.get()));
        }
        {
            let mut pieces = self.lock();
            let slot = pieces
                .get_mut(piece.as_usize())
                .ok_or(StoreError::OutOfRange(piece.get()))?;
            *slot = Some(data);
        }
        self.held.insert(piece);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::ReadError;
    use chunkswarm_core::metainfo::TorrentBuilder;
    use futures::FutureExt as _;
    use futures::executor::block_on;

    fn torrent(len: usize) -> (Info, Vec<u8>) {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .build_from_reader("x.bin", content.as_slice())
            .unwrap();
        (meta.info().clone(), content)
    }

    fn piece_bytes(info: &Info, content: &[u8], index: u32) -> (PieceIndex, Bytes) {
        let layout = info.layout();
        let piece = layout.piece(index).unwrap();
        let range = layout.piece_range(piece);
        let data = Bytes::copy_from_slice(&content[range.start as usize..range.end as usize]);
        (piece, data)
    }

    #[test]
    fn a_range_across_pieces_resolves_once_all_are_written() {
        let (info, content) = torrent(40_000);
        let buffer = PieceBuffer::new(info.layout());
        let range = buffer.clamp(10_000, 35_000).unwrap();
        let mut read = Box::pin(buffer.wait_range(range.clone()));
        assert!(read.as_mut().now_or_never().is_none());
        for index in [0, 2] {
            let (piece, data) = piece_bytes(&info, &content, index);
            block_on(buffer.write(piece, data)).unwrap();
        }
        assert!(read.as_mut().now_or_never().is_none());
        let (piece, data) = piece_bytes(&info, &content, 1);
        block_on(buffer.write(piece, data)).unwrap();
        let bytes = read.now_or_never().unwrap().unwrap();
        assert_eq!(&bytes[..], &content[10_000..35_000]);
        assert!(buffer.has_range(&(0..40_000)));
        assert_eq!(buffer.all_pieces().unwrap().concat(), content);
    }

    #[test]
    fn ranges_are_clamped_and_checked() {
        let (info, _) = torrent(40_000);
        let buffer = PieceBuffer::new(info.layout());
        assert_eq!(buffer.clamp(39_000, u64::MAX).unwrap(), 39_000..40_000);
        assert_eq!(buffer.clamp(40_000, 40_000).unwrap(), 40_000..40_000);
        assert!(buffer.clamp(5, 4).is_err());
        assert!(buffer.clamp(40_001, 50_000).is_err());
        let empty = block_on(buffer.wait_range(40_000..40_000)).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn closing_fails_waiting_readers_and_bad_writes_are_refused() {
        let (info, content) = torrent(40_000);
        let buffer = PieceBuffer::new(info.layout());
        let mut read = Box::pin(buffer.wait_range(0..100));
        assert!(read.as_mut().now_or_never().is_none());
        let (piece, data) = piece_bytes(&info, &content, 2);
        assert!(block_on(buffer.write(piece, data.slice(1..))).is_err());
        buffer.close();
        assert_eq!(read.now_or_never().unwrap(), Err(ReadError::Closed));
    }

    #[test]
    fn only_pieces_matching_their_hash_count_as_verified() {
        let (info, content) = torrent(40_000);
        let buffer = PieceBuffer::new(info.layout());
        let (good, data) = piece_bytes(&info, &content, 0);
        block_on(buffer.write(good, data)).unwrap();
        let bad = info.layout().piece(1).unwrap();
        block_on(buffer.write(bad, Bytes::from(vec![0u8; 16 << 10]))).unwrap();
        let have = block_on(buffer.verified(&info)).unwrap();
        assert_eq!(have.iter_ones().collect::<Vec<_>>(), vec![good]);
        assert!(block_on(buffer.read(bad)).is_err());
    }
}
