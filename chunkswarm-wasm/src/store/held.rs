//! Which pieces a store holds, and readers waiting for byte ranges.
//!
//! Both stores mark a piece here once it is written (it was verified before
//! the engine handed it over), so a range that [`HeldPieces::wait_range`]
//! resolves is verified content wherever the bytes live.

use std::future::Future;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};

use chunkswarm_core::layout::{Layout, PieceIndex};
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
    /// The storage failed to give back bytes it holds.
    #[error("storage: {0}")]
    Storage(String),
}

#[derive(Debug)]
struct State {
    have: Bitfield,
    waiting: Vec<Waker>,
    closed: bool,
}

/// The held pieces of one torrent and the readers waiting on them.
#[derive(Debug)]
pub struct HeldPieces {
    layout: Layout,
    state: Mutex<State>,
}

impl HeldPieces {
    /// Nothing held yet, for content cut as `layout` says.
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            state: Mutex::new(State {
                have: Bitfield::new(layout.piece_count()),
                waiting: Vec::new(),
                closed: false,
            }),
        }
    }

    /// The content's geometry.
    pub fn layout(&self) -> Layout {
        self.layout
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

    /// The pieces under a (clamped, non-empty) range.
    pub fn pieces_under(&self, range: &Range<u64>) -> Vec<PieceIndex> {
        if range.is_empty() {
            return Vec::new();
        }
        match (
            self.layout.piece_at_offset(range.start),
            self.layout.piece_at_offset(range.end - 1),
        ) {
            (Some(first), Some(last)) => (first.get()..=last.get())
                .filter_map(|i| self.layout.piece(i))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Marks `piece` held and wakes the readers.
    pub fn insert(&self, piece: PieceIndex) {
        let waiting = {
            let mut state = self.lock();
            state.have.insert(piece);
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }

    /// Whether `piece` is held.
    pub fn contains(&self, piece: PieceIndex) -> bool {
        self.lock().have.contains(piece)
    }

    /// The held pieces now.
    pub fn snapshot(&self) -> Bitfield {
        self.lock().have.clone()
    }

    /// Whether every piece under `range` (clamped) is held now.
    pub fn has_range(&self, range: &Range<u64>) -> bool {
        let state = self.lock();
        self.pieces_under(range)
            .into_iter()
            .all(|p| state.have.contains(p))
    }

    /// Completes once every piece under `range` (clamped with
    /// [`clamp`](Self::clamp)) is held; fails once the store is closed.
    pub fn wait_range(&self, range: Range<u64>) -> impl Future<Output = Result<(), ReadError>> {
        let pieces = self.pieces_under(&range);
        self.wait_for(move |have| pieces.iter().all(|p| have.contains(*p)))
    }

    /// Completes once every piece is held.
    pub fn wait_all(&self) -> impl Future<Output = Result<(), ReadError>> {
        self.wait_for(Bitfield::is_full)
    }

    fn wait_for(
        &self,
        ready: impl Fn(&Bitfield) -> bool,
    ) -> impl Future<Output = Result<(), ReadError>> {
        futures::future::poll_fn(move |cx| {
            let mut state = self.lock();
            if ready(&state.have) {
                return Poll::Ready(Ok(()));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use futures::FutureExt as _;

    fn held() -> HeldPieces {
        HeldPieces::new(Layout::new(40_000, 16 << 10).unwrap())
    }

    #[test]
    fn a_range_resolves_once_every_piece_under_it_is_held() {
        let held = held();
        let layout = held.layout();
        let range = held.clamp(10_000, 35_000).unwrap();
        assert_eq!(held.pieces_under(&range).len(), 3);
        let mut wait = Box::pin(held.wait_range(range.clone()));
        held.insert(layout.piece(0).unwrap());
        held.insert(layout.piece(2).unwrap());
        assert!(wait.as_mut().now_or_never().is_none());
        assert!(!held.has_range(&range));
        held.insert(layout.piece(1).unwrap());
        assert_eq!(wait.now_or_never(), Some(Ok(())));
        assert!(held.has_range(&range));
        assert!(held.snapshot().is_full());
    }

    #[test]
    fn ranges_are_clamped_and_closing_fails_waiters() {
        let held = held();
        assert_eq!(held.clamp(39_000, u64::MAX).unwrap(), 39_000..40_000);
        assert!(held.clamp(5, 4).is_err());
        assert!(held.clamp(40_001, 50_000).is_err());
        assert!(held.pieces_under(&(40_000..40_000)).is_empty());
        let mut all = Box::pin(held.wait_all());
        assert!(all.as_mut().now_or_never().is_none());
        held.close();
        assert_eq!(all.now_or_never(), Some(Err(ReadError::Closed)));
    }
}
