//! The browser's piece store: verified pieces in memory, readable by byte
//! range as soon as they arrive.
//!
//! The driver writes only pieces that passed their hash check, so whatever
//! [`PieceBuffer::wait_range`] returns is verified content. Readers waiting
//! for bytes are woken by every write and fail once the buffer is closed.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};

use async_trait::async_trait;
use bytes::Bytes;
use chunkswarm_core::driver::{PieceStore, StoreError};
use chunkswarm_core::layout::{Layout, PieceIndex};
use chunkswarm_core::metainfo::Info;
use chunkswarm_core::piece_map::Bitfield;

/// Why a byte range cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The range is empty-backwards or starts past the end of the content.
    #[error("bad range {start}..{end} of content of {length} bytes")]
    BadRange {
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// Length of the content.
        length: u64,
    },
    /// The torrent was removed (its client destroyed) before the bytes arrived.
    #[error("the torrent is closed")]
    Closed,
}

struct State {
    pieces: Vec<Option<Bytes>>,
    waiting: Vec<Waker>,
    closed: bool,
}

/// Verified pieces of one torrent, kept in memory.
pub struct PieceBuffer {
    layout: Layout,
    state: Mutex<State>,
}

impl fmt::Debug for PieceBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("PieceBuffer")
            .field("pieces", &state.pieces.len())
            .field("held", &state.pieces.iter().flatten().count())
            .field("closed", &state.closed)
            .finish()
    }
}

impl PieceBuffer {
    /// An empty buffer for content cut as `layout` says.
    pub fn new(layout: Layout) -> Self {
        let count = layout.piece_count() as usize;
        Self {
            layout,
            state: Mutex::new(State {
                pieces: vec![None; count],
                waiting: Vec::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clamps `start..end` to the content: `end` past the end is cut back;
    /// a backwards range or a start past the end is an error.
    pub fn clamp(&self, start: u64, end: u64) -> Result<Range<u64>, ReadError> {
        let length = self.layout.total_length();
        if start > end || start > length {
            return Err(ReadError::BadRange { start, end, length });
        }
        Ok(start..end.min(length))
    }

    /// The bytes of `range` (already clamped) if every piece under it is held.
    fn try_read(&self, state: &State, range: &Range<u64>) -> Option<Bytes> {
        if range.is_empty() {
            return Some(Bytes::new());
        }
        let first = self.layout.piece_at_offset(range.start)?;
        let last = self.layout.piece_at_offset(range.end - 1)?;
        if first == last {
            let data = state.pieces.get(first.as_usize())?.as_ref()?;
            let offset = self.layout.piece_offset(first);
            let from = usize::try_from(range.start - offset).ok()?;
            let to = usize::try_from(range.end - offset).ok()?;
            return data.get(from..to).map(|_| data.slice(from..to));
        }
        let mut out = Vec::with_capacity(usize::try_from(range.end - range.start).ok()?);
        for index in first.get()..=last.get() {
            let piece = self.layout.piece(index)?;
            let data = state.pieces.get(piece.as_usize())?.as_ref()?;
            let offset = self.layout.piece_offset(piece);
            let from = usize::try_from(range.start.saturating_sub(offset)).ok()?;
            let to = usize::try_from(range.end.min(offset + data.len() as u64) - offset).ok()?;
            out.extend_from_slice(data.get(from..to)?);
        }
        Some(Bytes::from(out))
    }

    /// Whether every piece under `range` (clamped) is held now.
    pub fn has_range(&self, range: &Range<u64>) -> bool {
        let state = self.lock();
        self.try_read(&state, range).is_some()
    }

    /// Completes with the bytes of `range` (clamped with [`clamp`](Self::clamp))
    /// once every piece under it is verified.
    pub fn wait_range(&self, range: Range<u64>) -> impl Future<Output = Result<Bytes, ReadError>> {
        futures::future::poll_fn(move |cx| {
            let mut state = self.lock();
            if let Some(bytes) = self.try_read(&state, &range) {
                return Poll::Ready(Ok(bytes));
            }
            if state.closed {
                return Poll::Ready(Err(ReadError::Closed));
            }
            if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// Every piece in order, or `None` while one is missing.
    pub fn all_pieces(&self) -> Option<Vec<Bytes>> {
        self.lock().pieces.iter().cloned().collect()
    }

    /// Completes with every piece in order once all are verified.
    pub fn wait_all(&self) -> impl Future<Output = Result<Vec<Bytes>, ReadError>> {
        futures::future::poll_fn(move |cx| {
            let mut state = self.lock();
            if let Some(pieces) = state.pieces.iter().cloned().collect() {
                return Poll::Ready(Ok(pieces));
            }
            if state.closed {
                return Poll::Ready(Err(ReadError::Closed));
            }
            if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// Fails every waiting and future reader of missing bytes.
    pub fn close(&self) {
        let waiting = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl PieceStore for PieceBuffer {
    async fn verified(&self, info: &Info) -> Result<Bitfield, StoreError> {
        let mut have = Bitfield::new(self.layout.piece_count());
        let mut state = self.lock();
        for piece in self.layout.pieces() {
            if let Some(slot) = state.pieces.get_mut(piece.as_usize()) {
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
            .pieces
            .get(piece.as_usize())
            .cloned()
            .flatten()
            .ok_or(StoreError::Missing(piece.get()))
    }

    async fn write(&self, piece: PieceIndex, data: Bytes) -> Result<(), StoreError> {
        if self.layout.piece(piece.get()) != Some(piece)
            || data.len() != self.layout.piece_len(piece) as usize
        {
            return Err(StoreError::OutOfRange(piece.get()));
        }
        let waiting = {
            let mut state = self.lock();
            let slot = state
                .pieces
                .get_mut(piece.as_usize())
                .ok_or(StoreError::OutOfRange(piece.get()))?;
            *slot = Some(data);
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
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
