//! How many connected peers hold each piece: the input to rarest-first.

use super::Bitfield;
use crate::layout::PieceIndex;

/// Per-piece counts of the peers that hold each piece.
///
/// Seeds (peers that sent `have-all` or a full bitfield) are counted once, in a
/// single counter, so a seed joining or leaving is O(1) however many pieces
/// there are; a partial peer costs O(its pieces) to join or leave, and a `have`
/// is O(1). Counts are `u16` per piece plus the shared seed count, so the map
/// costs 2 bytes a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    partial: Box<[u16]>,
    seeds: u32,
}

impl Availability {
    /// No peers yet, over `len` pieces.
    pub fn new(len: u32) -> Self {
        Self {
            partial: vec![0; len as usize].into_boxed_slice(),
            seeds: 0,
        }
    }

    /// Number of pieces counted.
    pub fn len(&self) -> u32 {
        // Built from a u32 length.
        self.partial.len() as u32
    }

    /// Whether there are no pieces to count.
    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }

    /// How many peers hold the piece (saturating at `u32::MAX`).
    pub fn count(&self, piece: PieceIndex) -> u32 {
        let partial = self.partial.get(piece.as_usize()).copied().unwrap_or(0);
        self.seeds.saturating_add(u32::from(partial))
    }

    /// Number of seeds counted.
    pub fn seeds(&self) -> u32 {
        self.seeds
    }

    /// A seed joined (or a peer became one after being
    /// [removed](Self::remove_peer) as partial).
    pub fn add_seed(&mut self) {
        self.seeds = self.seeds.saturating_add(1);
    }

    /// A seed left.
    pub fn remove_seed(&mut self) {
        self.seeds = self.seeds.saturating_sub(1);
    }

    /// A peer with these pieces joined. A full bitfield counts as a seed.
    pub fn add_peer(&mut self, pieces: &Bitfield) {
        if pieces.is_full() {
            self.add_seed();
        } else {
            pieces.iter_ones().for_each(|piece| self.add_have(piece));
        }
    }

    /// A peer with these pieces left; `pieces` must be what it was counted
    /// with (its bitfield plus its `have`s), full meaning it was counted as a seed.
    pub fn remove_peer(&mut self, pieces: &Bitfield) {
        if pieces.is_full() {
            self.remove_seed();
        } else {
            pieces.iter_ones().for_each(|piece| self.remove_have(piece));
        }
    }

    /// A partial peer announced a piece with `have`.
    pub fn add_have(&mut self, piece: PieceIndex) {
        if let Some(count) = self.partial.get_mut(piece.as_usize()) {
            *count = count.saturating_add(1);
        }
    }

    /// Undoes one [`add_have`](Self::add_have).
    pub fn remove_have(&mut self, piece: PieceIndex) {
        if let Some(count) = self.partial.get_mut(piece.as_usize()) {
            *count = count.saturating_sub(1);
        }
    }

    /// A partial peer whose pieces were `pieces` completed the torrent: its
    /// per-piece counts move to the seed counter.
    pub fn promote_to_seed(&mut self, pieces: &Bitfield) {
        self.remove_peer(pieces);
        self.add_seed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;

    #[test]
    fn counts_partial_peers_and_seeds() {
        let layout = Layout::new(10, 1).unwrap();
        let p = |i| layout.piece(i).unwrap();
        let mut availability = Availability::new(10);
        let mut a = Bitfield::new(10);
        a.insert(p(1));
        a.insert(p(9));
        availability.add_peer(&a);
        availability.add_peer(&Bitfield::full(10));
        assert_eq!(availability.count(p(1)), 2);
        assert_eq!(availability.count(p(0)), 1);
        availability.add_have(p(0));
        a.insert(p(0));
        assert_eq!(availability.count(p(0)), 2);
        availability.remove_peer(&a);
        assert_eq!(availability.count(p(0)), 1);
        assert_eq!(availability.count(p(9)), 1);
        availability.remove_seed();
        assert!(layout.pieces().all(|piece| availability.count(piece) == 0));
    }

    #[test]
    fn promotion_keeps_totals() {
        let layout = Layout::new(4, 1).unwrap();
        let mut availability = Availability::new(4);
        let mut a = Bitfield::new(4);
        a.insert(layout.piece(2).unwrap());
        availability.add_peer(&a);
        availability.promote_to_seed(&a);
        assert!(layout.pieces().all(|piece| availability.count(piece) == 1));
        assert_eq!(availability.seeds(), 1);
    }
}
