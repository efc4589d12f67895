//! The offers a connection made that were forwarded and not answered yet.
//!
//! An answer names its offer by `offer_id`; a busy connection has up to
//! [`Limits::max_pending_offers_per_connection`](crate::Limits) of them.
//! Beside the offers, oldest first, a list of their ids' first eight bytes
//! is searched, newest first (answers come to recent offers): one machine
//! word per offer rather than a whole offer's fields.

use std::collections::VecDeque;
use std::time::Instant;

use super::Pending;
use crate::signaling::ids::OfferId;

fn tag(offer_id: &OfferId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&offer_id.0[..8]);
    u64::from_ne_bytes(first)
}

/// Offers waiting for their answer, oldest first.
#[derive(Debug, Default)]
pub(super) struct PendingOffers {
    offers: VecDeque<Pending>,
    tags: VecDeque<u64>,
}

impl PendingOffers {
    /// Adds `pending`, forgetting the oldest offer if `max` are waiting.
    /// Offers are added in the order they expire.
    pub(super) fn push(&mut self, pending: Pending, max: usize) {
        while self.offers.len() >= max.max(1) {
            self.offers.pop_front();
            self.tags.pop_front();
        }
        self.tags.push_back(tag(&pending.offer_id));
        self.offers.push_back(pending);
    }

    /// Forgets the offers expired at `now`.
    pub(super) fn expire(&mut self, now: Instant) {
        while self.offers.front().is_some_and(|p| p.expires <= now) {
            self.offers.pop_front();
            self.tags.pop_front();
        }
        if self.offers.is_empty() {
            *self = Self::default();
        }
    }

    /// Takes the newest offer with `offer_id` for which `matches` holds.
    pub(super) fn take(
        &mut self,
        offer_id: &OfferId,
        matches: impl Fn(&Pending) -> bool,
    ) -> Option<Pending> {
        let wanted = tag(offer_id);
        let mut end = self.tags.len();
        while let Some(index) = self.tags.range(..end).rposition(|&t| t == wanted) {
            let hit = self
                .offers
                .get(index)
                .is_some_and(|p| p.offer_id == *offer_id && matches(p));
            if hit {
                self.tags.remove(index);
                return self.offers.remove(index);
            }
            end = index;
        }
        None
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.offers.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::signaling::ids::Id20;

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
}
