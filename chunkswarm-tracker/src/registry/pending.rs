//! The offers a connection made that were forwarded and not answered yet.
//!
//! An answer names its offer by `offer_id`; a busy connection has up to
//! [`Limits::max_pending_offers_per_connection`](crate::Limits) of them.
//! They are kept oldest first (they expire in that order), and found by an
//! index from their ids' first eight bytes to the newest offer with them,
//! each offer linking to the next older one with the same eight bytes. An
//! answered offer leaves a hole in its place, dropped when it reaches the
//! front, or all at once when holes outnumber offers. While the list is
//! short (most connections' is), it has no index and is searched: the
//! index of a few offers took more memory than they did.
//!
//! (Searching the list and removing from its middle cost a sixth of the
//! tracker's time under aquatic's load tester, whose connections keep
//! 2,000 offers each.)

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::Pending;
use crate::signaling::ids::OfferId;

fn tag(offer_id: &OfferId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&offer_id.0[..8]);
    u64::from_ne_bytes(first)
}

/// Holes tolerated beyond the number of offers before they are removed.
const SLACK: usize = 64;

/// The longest list searched without an index.
const UNINDEXED: usize = 8;

#[derive(Debug)]
struct Slot {
    /// `None` once answered.
    pending: Option<Pending>,
    /// The sequence number of the next older offer whose tag is this one's
    /// (kept while the list has an index).
    older: Option<u64>,
}

/// Offers waiting for their answer, oldest first.
#[derive(Debug, Default)]
pub(super) struct PendingOffers {
    slots: VecDeque<Slot>,
    /// The sequence number of `slots[0]`.
    first: u64,
    /// Tag to the sequence number of the newest offer with it, once the
    /// list is longer than [`UNINDEXED`]. Boxed: a word in every
    /// connection's state rather than a map's 48 bytes.
    #[allow(clippy::box_collection)]
    newest: Option<Box<HashMap<u64, u64>>>,
    /// Offers in `slots` (the rest are holes).
    live: usize,
}

impl PendingOffers {
    /// Adds `pending`, forgetting the oldest offer if `max` are waiting.
    /// Offers are added in the order they expire.
    pub(super) fn push(&mut self, pending: Pending, max: usize) {
        while self.live >= max.max(1) {
            self.pop_front();
        }
        self.push_back(pending);
        if self.slots.len() > 2 * self.live + SLACK {
            self.compact();
        }
    }

    fn push_back(&mut self, pending: Pending) {
        let seq = self.first + self.slots.len() as u64;
        let older = self
            .newest
            .as_mut()
            .and_then(|newest| newest.insert(tag(&pending.offer_id), seq));
        super::snug::push_back(
            &mut self.slots,
            Slot {
                pending: Some(pending),
                older,
            },
        );
        self.live += 1;
        if self.newest.is_none() && self.slots.len() > UNINDEXED {
            self.index_all();
        }
    }

    /// Builds the index of the offers, linking each to the next older one
    /// with its tag.
    fn index_all(&mut self) {
        let mut newest = HashMap::new();
        for (seq, slot) in (self.first..).zip(self.slots.iter_mut()) {
            if let Some(pending) = &slot.pending {
                slot.older = newest.insert(tag(&pending.offer_id), seq);
            }
        }
        self.newest = Some(Box::new(newest));
    }

    /// Removes the front slot, then the holes behind it.
    fn pop_front(&mut self) {
        if let Some(slot) = self.slots.pop_front() {
            if let Some(pending) = slot.pending {
                self.live -= 1;
                let tag = tag(&pending.offer_id);
                if let Some(newest) = self.newest.as_mut() {
                    if newest.get(&tag) == Some(&self.first) {
                        newest.remove(&tag);
                    }
                }
            }
            self.first += 1;
        }
        self.drop_leading_holes();
    }

    fn drop_leading_holes(&mut self) {
        while self.slots.front().is_some_and(|s| s.pending.is_none()) {
            self.slots.pop_front();
            self.first += 1;
        }
        if self.slots.is_empty() {
            *self = Self::default();
        }
    }

    /// Rebuilds the list without its holes.
    fn compact(&mut self) {
        let offers: Vec<Pending> = std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|s| s.pending)
            .collect();
        *self = Self::default();
        for pending in offers {
            self.push_back(pending);
        }
    }

    /// Forgets the offers expired at `now`.
    pub(super) fn expire(&mut self, now: Instant) {
        while let Some(slot) = self.slots.front() {
            match &slot.pending {
                Some(p) if p.expires <= now => self.pop_front(),
                _ => break,
            }
        }
        if self.slots.is_empty() {
            *self = Self::default();
        }
    }

    /// The index in `slots` of the offer numbered `seq`, if it is still there.
    fn index(&self, seq: u64) -> Option<usize> {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        (index < self.slots.len()).then_some(index)
    }

    /// Takes the newest offer with `offer_id` for which `matches` holds.
    pub(super) fn take(
        &mut self,
        offer_id: &OfferId,
        matches: impl Fn(&Pending) -> bool,
    ) -> Option<Pending> {
        if self.newest.is_none() {
            return self.search(offer_id, matches);
        }
        let tag = tag(offer_id);
        // The offer whose `older` leads to the one looked at.
        let mut newer: Option<usize> = None;
        let mut cursor = self.newest.as_ref()?.get(&tag).copied();
        while let Some(index) = cursor.and_then(|seq| self.index(seq)) {
            let slot = self.slots.get(index)?;
            let older = slot.older.filter(|&seq| self.index(seq).is_some());
            let hit = slot
                .pending
                .as_ref()
                .is_some_and(|p| p.offer_id == *offer_id && matches(p));
            if hit {
                match newer.and_then(|n| self.slots.get_mut(n)) {
                    Some(newer) => newer.older = older,
                    None => {
                        let newest = self.newest.as_mut()?;
                        match older {
                            Some(seq) => newest.insert(tag, seq),
                            None => newest.remove(&tag),
                        };
                    }
                }
                return self.take_at(index);
            }
            newer = Some(index);
            cursor = older;
        }
        None
    }

    /// [`Self::take`] in a list without an index: the newest match.
    fn search(
        &mut self,
        offer_id: &OfferId,
        matches: impl Fn(&Pending) -> bool,
    ) -> Option<Pending> {
        let index = self.slots.iter().rposition(|slot| {
            slot.pending
                .as_ref()
                .is_some_and(|p| p.offer_id == *offer_id && matches(p))
        })?;
        self.take_at(index)
    }

    /// Takes the offer at `index`, leaving a hole (already unlinked).
    fn take_at(&mut self, index: usize) -> Option<Pending> {
        let taken = self.slots.get_mut(index)?.pending.take();
        self.live -= 1;
        self.drop_leading_holes();
        if self.slots.len() > 2 * self.live + SLACK {
            self.compact();
        }
        taken
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// Offers it has room for.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.slots.capacity()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::signaling::ids::Id20;

    /// An id of `fill` bytes that ends in `n`: ids alike in their first
    /// eight bytes, told apart by the last.
    fn id_ending(fill: u8, n: u8) -> [u8; 20] {
        let mut bytes = [fill; 20];
        bytes[19] = n;
        bytes
    }

    /// The connection of the newest offer under `id` that passes `keep`, taken.
    fn taken(
        offers: &mut PendingOffers,
        id: [u8; 20],
        keep: impl Fn(&Pending) -> bool,
    ) -> Option<u64> {
        offers.take(&Id20(id), keep).map(|p| p.to_conn)
    }

    fn offer(id: [u8; 20], to: u8, expires: Instant) -> Pending {
        Pending {
            offer_id: Id20(id),
            from: Id20([1; 20]),
            info_hash: chunkswarm_core::metainfo::InfoHash::new([2; 20]),
            to: Id20([to; 20]),
            to_conn: u64::from(to),
            expires,
        }
    }

    #[test]
    fn offers_are_found_by_id_and_the_oldest_go_first() {
        let now = Instant::now();
        let mut offers = PendingOffers::default();
        // Same first eight bytes: told apart by the whole id.
        let (a, mut b) = ([7; 20], [7; 20]);
        b[19] = 8;
        offers.push(offer(a, 1, now + Duration::from_secs(1)), 3);
        offers.push(offer(b, 2, now + Duration::from_secs(2)), 3);
        offers.push(offer([9; 20], 3, now + Duration::from_secs(3)), 3);
        assert!(offers.take(&Id20(b), |p| p.to_conn == 1).is_none());
        assert_eq!(
            offers.take(&Id20(b), |p| p.to_conn == 2).map(|p| p.to_conn),
            Some(2)
        );
        assert!(offers.take(&Id20(b), |_| true).is_none());
        // Full: a fourth forgets the oldest.
        offers.push(offer([10; 20], 4, now + Duration::from_secs(4)), 3);
        offers.push(offer([11; 20], 5, now + Duration::from_secs(5)), 3);
        assert!(offers.take(&Id20(a), |_| true).is_none());
        assert_eq!(offers.len(), 3);
        offers.expire(now + Duration::from_secs(4));
        assert_eq!(offers.len(), 1);
        assert!(offers.take(&Id20([11; 20]), |_| true).is_some());
        offers.expire(now + Duration::from_secs(9));
        assert_eq!(offers.len(), 0);
    }

    #[test]
    fn many_offers_under_one_tag_are_taken_in_any_order_and_holes_are_freed() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut offers = PendingOffers::default();
        let id = |n: u8| id_ending(5, n);
        for n in 0..50 {
            offers.push(offer(id(n), n, later), 1000);
        }
        for n in (0..50)
            .filter(|n| n % 3 == 0)
            .chain((0..50).filter(|n| n % 3 != 0).rev())
        {
            assert_eq!(
                taken(&mut offers, id(n), |_| true),
                Some(u64::from(n)),
                "{n}"
            );
            assert!(offers.take(&Id20(id(n)), |_| true).is_none());
        }
        assert_eq!(offers.len(), 0);
        assert_eq!(offers.slots.capacity(), 0);
        // The same id twice: the newest that matches goes first.
        offers.push(offer(id(1), 1, later), 1000);
        offers.push(offer(id(1), 2, later), 1000);
        offers.push(offer(id(1), 3, later), 1000);
        assert_eq!(taken(&mut offers, id(1), |p| p.to_conn != 3), Some(2));
        assert_eq!(taken(&mut offers, id(1), |_| true), Some(3));
        assert_eq!(taken(&mut offers, id(1), |_| true), Some(1));
        // Answered offers in the middle do not pile up.
        for n in 0..10_000u32 {
            let mut bytes = [0; 20];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            offers.push(offer(bytes, 0, later), 1000);
            if n % 2 == 1 {
                assert!(offers.take(&Id20(bytes), |_| true).is_some());
            }
        }
        // Each odd id pushed out an even one and was then answered.
        assert_eq!(offers.len(), 999);
        assert!(
            offers.slots.len() <= 2 * 1000 + SLACK,
            "{}",
            offers.slots.len()
        );
        // The oldest that is left went when the cap was reached: the first
        // even ids are gone, the last are there.
        let id_of = |n: u32| {
            let mut bytes = [0; 20];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            Id20(bytes)
        };
        assert!(offers.take(&id_of(0), |_| true).is_none());
        assert!(offers.take(&id_of(9998), |_| true).is_some());
    }

    #[test]
    fn a_short_list_is_searched_and_indexed_once_it_grows() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut offers = PendingOffers::default();
        let id = |n: u8| id_ending(3, n);
        for n in 0..3 {
            offers.push(offer(id(n), n, later), 1000);
        }
        assert!(offers.newest.is_none());
        assert_eq!(taken(&mut offers, id(1), |_| true), Some(1));
        // The same id twice: the newest that matches goes first, unindexed too.
        offers.push(offer(id(0), 9, later), 1000);
        assert_eq!(taken(&mut offers, id(0), |_| true), Some(9));
        // Past the unindexed length, with a hole inside: indexed.
        for n in 10..20 {
            offers.push(offer(id(n), n, later), 1000);
        }
        assert!(offers.newest.is_some());
        offers.push(offer(id(0), 8, later), 1000);
        assert_eq!(taken(&mut offers, id(0), |p| p.to_conn != 8), Some(0));
        assert_eq!(taken(&mut offers, id(0), |_| true), Some(8));
        for n in (10..20).rev().chain([2]) {
            assert_eq!(taken(&mut offers, id(n), |_| true), Some(u64::from(n)));
        }
        assert_eq!(offers.len(), 0);
        assert!(offers.newest.is_none());
    }

    #[test]
    fn offers_are_taken_as_a_plain_list_would_give_them() {
        let start = Instant::now();
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            let max = rng.usize(1..40);
            let mut offers = PendingOffers::default();
            // Oldest first: (id byte, to_conn, expires).
            let mut model: Vec<(u8, u64, Instant)> = Vec::new();
            let mut clock = 0u64;
            for _ in 0..300 {
                match rng.u8(0..10) {
                    0..=4 => {
                        clock += 1;
                        let (n, to) = (rng.u8(0..12), rng.u64(0..4));
                        let expires = start + Duration::from_millis(clock * 10);
                        offers.push(offer([n; 20], to as u8, expires), max);
                        while model.len() >= max {
                            model.remove(0);
                        }
                        model.push((n, to, expires));
                    }
                    5..=8 => {
                        let (n, not_to) = (rng.u8(0..12), rng.u64(0..5));
                        let got = offers.take(&Id20([n; 20]), |p| p.to_conn != not_to);
                        let want = model
                            .iter()
                            .rposition(|&(m, to, _)| m == n && to != not_to)
                            .map(|i| model.remove(i));
                        assert_eq!(
                            got.map(|p| p.to_conn),
                            want.map(|(_, to, _)| to),
                            "round {round}"
                        );
                    }
                    _ => {
                        let now = start + Duration::from_millis(rng.u64(0..=clock) * 10);
                        offers.expire(now);
                        while model.first().is_some_and(|&(_, _, e)| e <= now) {
                            model.remove(0);
                        }
                    }
                }
                assert_eq!(offers.len(), model.len(), "round {round}");
            }
        }
    }
}
