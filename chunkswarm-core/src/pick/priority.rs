//! Rarest-first, sequential and streaming picking over one bucketed order.
//!
//! All pieces sit in one array, `order`, grouped into buckets by how many
//! connected partial peers hold them (bucket 0 first), with pieces no longer
//! wanted in a final bucket. `starts[b]` is where bucket `b` begins. A change
//! of one piece's count by one moves it across a single boundary with one
//! swap, so availability updates are O(1), and a rarest-first pick scans from
//! the rarest bucket and usually stops after a few pieces. State: 4 (order) +
//! 4 (position) + 2 (count) = 10 bytes per piece.

use std::ops::Range;

use super::{PeerView, PiecePicker, Strategy};
use crate::layout::PieceIndex;
use crate::rng::SeededRng;

/// Marks a piece that is not wanted in `count`.
const UNWANTED: u16 = 0x8000;
/// Counts are capped below the flag bit.
const MAX_COUNT: u16 = UNWANTED - 1;

/// The picker chunkswarm uses, with a [`Strategy`].
#[derive(Debug, Clone)]
pub struct PriorityPicker {
    strategy: Strategy,
    order: Vec<u32>,
    position: Vec<u32>,
    /// Availability of each piece, with [`UNWANTED`] set once it is not wanted.
    count: Vec<u16>,
    /// Start of each bucket in `order`; the last entry starts the unwanted bucket.
    starts: Vec<u32>,
    window: Range<u32>,
    /// No wanted piece lies below this index (sequential scans start here).
    first_wanted: u32,
}

impl PriorityPicker {
    /// A picker over `piece_count` pieces, all wanted and held by nobody, with
    /// ties broken by an order shuffled from `seed`.
    pub fn new(piece_count: u32, strategy: Strategy, seed: u64) -> Self {
        let mut order: Vec<u32> = (0..piece_count).collect();
        SeededRng::new(seed).shuffle(&mut order);
        let mut position = vec![0u32; piece_count as usize];
        for (i, &piece) in order.iter().enumerate() {
            position[piece as usize] = i as u32;
        }
        Self {
            strategy,
            order,
            position,
            count: vec![0; piece_count as usize],
            // Bucket 0 spans everything; the unwanted bucket is empty.
            starts: vec![0, piece_count],
            window: 0..0,
            first_wanted: 0,
        }
    }

    /// The strategy in use.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    fn unwanted_bucket(&self) -> usize {
        self.starts.len() - 1
    }

    fn bucket_of(&self, piece: usize) -> usize {
        let count = self.count[piece];
        if count & UNWANTED != 0 {
            self.unwanted_bucket()
        } else {
            usize::from(count)
        }
    }

    fn is_wanted(&self, piece: u32) -> bool {
        self.count
            .get(piece as usize)
            .is_some_and(|c| c & UNWANTED == 0)
    }

    /// Makes room for bucket `bucket` below the unwanted bucket.
    fn ensure_bucket(&mut self, bucket: usize) {
        while self.unwanted_bucket() <= bucket {
            let unwanted_start = self.starts[self.unwanted_bucket()];
            self.starts.push(unwanted_start);
            // The new penultimate entry is an empty bucket at the same place.
        }
    }

    fn swap(&mut self, a: u32, b: u32) {
        self.order.swap(a as usize, b as usize);
        let (pa, pb) = (self.order[a as usize], self.order[b as usize]);
        self.position[pa as usize] = a;
        self.position[pb as usize] = b;
    }

    /// Moves a piece from bucket `from` to bucket `to`, one boundary at a time.
    fn relocate(&mut self, piece: usize, from: usize, to: usize) {
        let mut bucket = from;
        while bucket < to {
            // Swap to the end of this bucket, then shrink it by one.
            let last = self.starts[bucket + 1] - 1;
            self.swap(self.position[piece], last);
            self.starts[bucket + 1] -= 1;
            bucket += 1;
        }
        while bucket > to {
            // Swap to the start of this bucket, then grow the one below.
            let first = self.starts[bucket];
            self.swap(self.position[piece], first);
            self.starts[bucket] += 1;
            bucket -= 1;
        }
    }

    /// Pieces in bucket order, from `from_bucket` up to the wanted end.
    fn ordered_from(&self, from_bucket: usize) -> impl Iterator<Item = u32> + '_ {
        let start = self.starts.get(from_bucket).copied().unwrap_or(0);
        let end = self.starts[self.unwanted_bucket()];
        self.order[start.min(end) as usize..end as usize]
            .iter()
            .copied()
    }

    fn rarest(
        &self,
        peer: PeerView<'_>,
        eligible: &mut dyn FnMut(PieceIndex) -> bool,
    ) -> Option<PieceIndex> {
        // A partial peer's pieces are counted, so they are never in bucket 0.
        let from = if peer.is_seed { 0 } else { 1 };
        self.ordered_from(from)
            .map(PieceIndex::new_unchecked)
            .find(|&p| peer.has(p) && eligible(p))
    }

    fn in_order(
        &self,
        range: Range<u32>,
        peer: PeerView<'_>,
        eligible: &mut dyn FnMut(PieceIndex) -> bool,
    ) -> Option<PieceIndex> {
        range
            .filter(|&p| self.is_wanted(p))
            .map(PieceIndex::new_unchecked)
            .find(|&p| peer.has(p) && eligible(p))
    }
}

impl PiecePicker for PriorityPicker {
    fn availability_changed(&mut self, piece: PieceIndex, count: u32) {
        let i = piece.as_usize();
        let Some(&old) = self.count.get(i) else {
            return;
        };
        let new = count.min(u32::from(MAX_COUNT)) as u16;
        if old & UNWANTED != 0 {
            self.count[i] = new | UNWANTED;
            return;
        }
        self.ensure_bucket(usize::from(new));
        self.relocate(i, usize::from(old), usize::from(new));
        self.count[i] = new;
    }

    fn set_wanted(&mut self, piece: PieceIndex, wanted: bool) {
        let i = piece.as_usize();
        let Some(&count) = self.count.get(i) else {
            return;
        };
        if wanted == (count & UNWANTED == 0) {
            return;
        }
        let available = usize::from(count & MAX_COUNT);
        if wanted {
            self.ensure_bucket(available);
            let unwanted = self.unwanted_bucket();
            self.relocate(i, unwanted, available);
            self.count[i] = count & MAX_COUNT;
            self.first_wanted = self.first_wanted.min(piece.get());
        } else {
            let from = self.bucket_of(i);
            let unwanted = self.unwanted_bucket();
            self.relocate(i, from, unwanted);
            self.count[i] = count | UNWANTED;
            while self.first_wanted < self.count.len() as u32 && !self.is_wanted(self.first_wanted)
            {
                self.first_wanted += 1;
            }
        }
    }

    fn set_window(&mut self, window: Range<u32>) {
        let len = self.count.len() as u32;
        self.window = window.start.min(len)..window.end.min(len);
    }

    fn pick(
        &mut self,
        peer: PeerView<'_>,
        eligible: &mut dyn FnMut(PieceIndex) -> bool,
    ) -> Option<PieceIndex> {
        match self.strategy {
            Strategy::RarestFirst => self.rarest(peer, eligible),
            Strategy::Sequential => {
                let all = self.first_wanted..self.count.len() as u32;
                self.in_order(all, peer, eligible)
            }
            Strategy::Streaming => {
                let window = self.window.clone();
                if let Some(piece) = self.in_order(window.clone(), peer, eligible) {
                    return Some(piece);
                }
                // The link belongs to the window until it is all verified.
                if window.clone().any(|p| self.is_wanted(p)) {
                    return None;
                }
                let ahead = window.end..self.count.len() as u32;
                self.in_order(ahead, peer, eligible)
                    .or_else(|| self.rarest(peer, eligible))
            }
        }
    }

    fn pick_unavailable(
        &mut self,
        eligible: &mut dyn FnMut(PieceIndex) -> bool,
    ) -> Option<PieceIndex> {
        let unavailable = |p: &u32| self.count[*p as usize] == 0;
        let in_window = self
            .window
            .clone()
            .filter(|p| self.is_wanted(*p) && unavailable(p))
            .map(PieceIndex::new_unchecked)
            .find(|&p| eligible(p));
        in_window.or_else(|| {
            let end = self.starts.get(1).copied().unwrap_or(0);
            self.order[..end as usize]
                .iter()
                .copied()
                .map(PieceIndex::new_unchecked)
                .find(|&p| eligible(p))
        })
    }

    fn state_bytes_per_piece(&self) -> usize {
        std::mem::size_of::<u32>() * 2 + std::mem::size_of::<u16>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece_map::Bitfield;

    fn p(i: u32) -> PieceIndex {
        PieceIndex::new_unchecked(i)
    }

    fn check_invariants(picker: &PriorityPicker) {
        for (i, &piece) in picker.order.iter().enumerate() {
            assert_eq!(picker.position[piece as usize], i as u32);
            let bucket = picker.bucket_of(piece as usize);
            assert!(picker.starts[bucket] as usize <= i);
            if bucket + 1 < picker.starts.len() {
                assert!(i < picker.starts[bucket + 1] as usize);
            }
        }
    }

    #[test]
    fn rarest_piece_the_peer_has_comes_first() {
        let mut picker = PriorityPicker::new(6, Strategy::RarestFirst, 1);
        let counts = [3, 1, 2, 1, 5, 4];
        for (i, &c) in counts.iter().enumerate() {
            picker.availability_changed(p(i as u32), c);
        }
        check_invariants(&picker);
        let mut has = Bitfield::new(6);
        for i in [0, 2, 3, 4] {
            has.insert(p(i));
        }
        let peer = PeerView {
            has: &has,
            is_seed: false,
        };
        assert_eq!(picker.pick(peer, &mut |_| true), Some(p(3)));
        assert_eq!(picker.pick(peer, &mut |x| x != p(3)), Some(p(2)));
        picker.set_wanted(p(2), false);
        check_invariants(&picker);
        assert_eq!(picker.pick(peer, &mut |x| x != p(3)), Some(p(0)));
    }

    #[test]
    fn sequential_and_streaming_orders() {
        let full = Bitfield::full(10);
        let seed = PeerView {
            has: &full,
            is_seed: true,
        };
        let mut sequential = PriorityPicker::new(10, Strategy::Sequential, 3);
        sequential.set_wanted(p(0), false);
        assert_eq!(sequential.pick(seed, &mut |_| true), Some(p(1)));

        let mut streaming = PriorityPicker::new(10, Strategy::Streaming, 3);
        for i in 0..10 {
            streaming.availability_changed(p(i), if i == 9 { 1 } else { 5 });
        }
        streaming.set_window(4..7);
        assert_eq!(streaming.pick(seed, &mut |_| true), Some(p(4)));
        // Nothing beyond the window until the window is verified.
        assert_eq!(streaming.pick(seed, &mut |x| x.get() > 6), None);
        (4..7).for_each(|i| streaming.set_wanted(p(i), false));
        // Then ahead of it in order, rarest or not.
        assert_eq!(streaming.pick(seed, &mut |_| true), Some(p(7)));
        (7..10).for_each(|i| streaming.set_wanted(p(i), false));
        // Then behind the playhead.
        let behind = streaming.pick(seed, &mut |_| true).map(PieceIndex::get);
        assert!(behind.is_some_and(|i| i < 4), "{behind:?}");
        streaming.set_window(0..2);
        assert_eq!(streaming.pick(seed, &mut |_| true), Some(p(0)));
    }

    #[test]
    fn wanting_again_restores_the_bucket() {
        let mut picker = PriorityPicker::new(50, Strategy::RarestFirst, 9);
        for i in 0..50 {
            picker.availability_changed(p(i), i % 7);
        }
        for i in (0..50).step_by(3) {
            picker.set_wanted(p(i), false);
            check_invariants(&picker);
        }
        for i in (0..50).step_by(6) {
            picker.availability_changed(p(i), 2);
            picker.set_wanted(p(i), true);
            check_invariants(&picker);
        }
        assert_eq!(picker.bucket_of(0), 2);
    }

    #[test]
    fn unavailable_pieces_differ_between_seeds() {
        let mut a = PriorityPicker::new(1000, Strategy::RarestFirst, 1);
        let mut b = PriorityPicker::new(1000, Strategy::RarestFirst, 2);
        assert_ne!(
            a.pick_unavailable(&mut |_| true),
            b.pick_unavailable(&mut |_| true)
        );
        a.availability_changed(p(5), 1);
        assert_ne!(a.pick_unavailable(&mut |x| x == p(5)), Some(p(5)));
    }
}
