//! Growing a connection's small lists from one element, not four.
//!
//! `Vec` and `VecDeque` give a list its room for four elements at the
//! first push. Most connections hold one peer id, a few memberships and a
//! few pending offers, and the registry keeps these lists for every open
//! connection: room for four 120-byte pending offers is 480 bytes where a
//! connection with two uses 240. These push by doubling from one (1, 2, 4,
//! 8, …), so a push still costs amortized O(1).

use std::collections::VecDeque;

/// The room to add before a push to a full list of `len`.
fn more(len: usize) -> usize {
    len.max(1)
}

/// Pushes `item` onto `list`, growing it by doubling from one element.
pub(super) fn push<T>(list: &mut Vec<T>, item: T) {
    if list.len() == list.capacity() {
        list.reserve_exact(more(list.len()));
    }
    list.push(item);
}

/// Pushes `item` at the back of `queue`, growing it by doubling from one element.
pub(super) fn push_back<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == queue.capacity() {
        queue.reserve_exact(more(queue.len()));
    }
    queue.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_grow_by_doubling_from_one() {
        let mut list = Vec::new();
        let mut queue = VecDeque::new();
        let mut capacities = Vec::new();
        for n in 0..100u64 {
            push(&mut list, [n; 15]);
            push_back(&mut queue, [n; 15]);
            assert!(
                list.capacity() <= 2 * list.len(),
                "{n}: {}",
                list.capacity()
            );
            assert!(
                queue.capacity() <= 2 * queue.len(),
                "{n}: {}",
                queue.capacity()
            );
            if capacities.last() != Some(&list.capacity()) {
                capacities.push(list.capacity());
            }
        }
        assert_eq!(capacities, [1, 2, 4, 8, 16, 32, 64, 128]);
        assert!(list.iter().zip(&queue).all(|(a, b)| a == b));
        assert_eq!(list.len(), 100);
        // A queue that wrapped around still takes its pushes in order.
        let mut queue = VecDeque::new();
        for n in 0..10u32 {
            push_back(&mut queue, n);
            if n % 3 == 0 {
                queue.pop_front();
            }
        }
        assert!(queue.iter().copied().eq(4..10), "{queue:?}");
    }
}
