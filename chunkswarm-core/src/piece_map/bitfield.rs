//! A set of pieces, stored as bits in BEP 3 order.

use crate::layout::PieceIndex;

/// Bits per storage word.
const WORD_BITS: u32 = 64;

/// A fixed-size set of pieces: which pieces a peer has, which we want, and so on.
///
/// Bits are kept in 64-bit words whose big-endian bytes are exactly the BEP 3
/// `bitfield` payload (the high bit of the first byte is piece 0), so
/// conversion to and from the wire is a byte copy and the set algebra runs a
/// word at a time. Bits past [`len`](Self::len) are always zero.
///
/// Binary operations ([`union_with`](Self::union_with),
/// [`wanted_from`](Self::wanted_from), ...) are meant for bitfields of the
/// same length; if lengths differ they act on the common prefix and keep
/// `self`'s length.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    words: Box<[u64]>,
    len: u32,
}

/// Why a received `bitfield` payload is not a valid set of pieces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    /// BEP 3 requires exactly `ceil(pieces / 8)` bytes.
    #[error("bitfield of {got} bytes for {pieces} pieces, expected {expected} bytes")]
    WrongLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        expected: usize,
        /// Number of pieces in the torrent.
        pieces: u32,
    },
    /// BEP 3 requires the spare bits at the end to be zero.
    #[error("bitfield has spare bits set past piece {pieces}")]
    SpareBitsSet {
        /// Number of pieces in the torrent.
        pieces: u32,
    },
}

impl Bitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Self {
        let words = vec![0; len.div_ceil(WORD_BITS) as usize].into_boxed_slice();
        Self { words, len }
    }

    /// The full set over `len` pieces.
    pub fn full(len: u32) -> Self {
        let mut field = Self::new(len);
        field.words.fill(u64::MAX);
        field.clear_spare_bits();
        field
    }

    /// Parses a BEP 3 `bitfield` payload for a torrent of `len` pieces.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let expected = len.div_ceil(8) as usize;
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                expected,
                pieces: len,
            });
        }
        let mut field = Self::new(len);
        for (word, chunk) in field.words.iter_mut().zip(bytes.chunks(8)) {
            let mut be = [0u8; 8];
            be[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_be_bytes(be);
        }
        let before = field.words.last().copied();
        field.clear_spare_bits();
        if field.words.last().copied() != before {
            return Err(BitfieldError::SpareBitsSet { pieces: len });
        }
        Ok(field)
    }

    /// The BEP 3 `bitfield` payload: `ceil(len / 8)` bytes, spare bits zero.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_be_bytes()).collect();
        bytes.truncate(self.len.div_ceil(8) as usize);
        bytes
    }

    /// Number of pieces the set ranges over (not the number of members).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the piece is in the set. Pieces beyond `len` are never members.
    pub fn contains(&self, piece: PieceIndex) -> bool {
        let (word, mask) = Self::position(piece);
        self.words.get(word).is_some_and(|w| w & mask != 0)
    }

    /// The 64 pieces from index `start` on as bits, lowest bit first: bit `i`
    /// is set when piece `start + i` is in the set. Pieces beyond `len` read
    /// as absent, so a scan can test 64 pieces at once anywhere.
    pub fn bits_from(&self, start: u32) -> u64 {
        let word = (start / WORD_BITS) as usize;
        let shift = start % WORD_BITS;
        let high = self.words.get(word).copied().unwrap_or(0) << shift;
        let low = match shift {
            0 => 0,
            _ => self.words.get(word + 1).copied().unwrap_or(0) >> (WORD_BITS - shift),
        };
        (high | low).reverse_bits()
    }

    /// Adds the piece; returns whether it was newly added. A piece beyond
    /// `len` is not added and `false` is returned.
    pub fn insert(&mut self, piece: PieceIndex) -> bool {
        if piece.get() >= self.len {
            return false;
        }
        let (word, mask) = Self::position(piece);
        match self.words.get_mut(word) {
            Some(w) if *w & mask == 0 => {
                *w |= mask;
                true
            }
            _ => false,
        }
    }

    /// Removes the piece; returns whether it was a member.
    pub fn remove(&mut self, piece: PieceIndex) -> bool {
        let (word, mask) = Self::position(piece);
        match self.words.get_mut(word) {
            Some(w) if *w & mask != 0 => {
                *w &= !mask;
                true
            }
            _ => false,
        }
    }

    /// Number of members.
    pub fn count_ones(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// Number of pieces in range that are not members.
    pub fn count_zeros(&self) -> u32 {
        self.len - self.count_ones()
    }

    /// Whether every piece is a member (a seed's set).
    pub fn is_full(&self) -> bool {
        self.count_ones() == self.len
    }

    /// Whether no piece is a member.
    pub fn is_clear(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Members in increasing order.
    pub fn iter_ones(&self) -> Ones<'_> {
        Ones {
            words: &self.words,
            word_index: 0,
            current: self.words.first().copied().unwrap_or(0),
        }
    }

    /// Pieces in range that are not members, in increasing order.
    pub fn iter_zeros(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        let mut complement = self.clone();
        complement.invert();
        complement.into_ones()
    }

    /// Members in increasing order, consuming the set.
    fn into_ones(self) -> impl Iterator<Item = PieceIndex> {
        let mut word_index = 0usize;
        let mut current = self.words.first().copied().unwrap_or(0);
        std::iter::from_fn(move || next_one(&self.words, &mut word_index, &mut current))
    }

    /// Turns every member into a non-member and back.
    pub fn invert(&mut self) {
        for w in self.words.iter_mut() {
            *w = !*w;
        }
        self.clear_spare_bits();
    }

    /// `self ∪= other`.
    pub fn union_with(&mut self, other: &Bitfield) {
        self.zip_words(other, |a, b| a | b);
    }

    /// `self ∩= other`.
    pub fn intersect_with(&mut self, other: &Bitfield) {
        self.zip_words(other, |a, b| a & b);
    }

    /// `self ∖= other`.
    pub fn difference_with(&mut self, other: &Bitfield) {
        self.zip_words(other, |a, b| a & !b);
    }

    /// The pieces `theirs` has that `self` lacks: what we want from that peer.
    pub fn wanted_from(&self, theirs: &Bitfield) -> Bitfield {
        let mut wanted = theirs.clone();
        wanted.difference_with(self);
        wanted
    }

    /// Whether `theirs` has any piece `self` lacks (BEP 3 "interested"),
    /// without allocating.
    pub fn wants_any_from(&self, theirs: &Bitfield) -> bool {
        self.words
            .iter()
            .zip(theirs.words.iter())
            .any(|(mine, theirs)| theirs & !mine != 0)
    }

    /// Whether every member of `self` is a member of `other`.
    pub fn is_subset(&self, other: &Bitfield) -> bool {
        self.words
            .iter()
            .enumerate()
            .all(|(i, w)| w & !other.words.get(i).copied().unwrap_or(0) == 0)
    }

    fn zip_words(&mut self, other: &Bitfield, op: impl Fn(u64, u64) -> u64) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w = op(*w, other.words.get(i).copied().unwrap_or(0));
        }
        self.clear_spare_bits();
    }

    fn position(piece: PieceIndex) -> (usize, u64) {
        let i = piece.get();
        (
            (i / WORD_BITS) as usize,
            1u64 << (WORD_BITS - 1 - i % WORD_BITS),
        )
    }

    fn clear_spare_bits(&mut self) {
        let used = self.len % WORD_BITS;
        if used != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= u64::MAX << (WORD_BITS - used);
            }
        }
    }
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{} ", self.count_ones(), self.len)?;
        for i in 0..self.len.min(128) {
            let (word, mask) = Self::position(PieceIndex::new_unchecked(i));
            let set = self.words.get(word).is_some_and(|w| w & mask != 0);
            f.write_str(if set { "1" } else { "0" })?;
        }
        if self.len > 128 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

/// Iterator over the members of a [`Bitfield`], in increasing order.
#[derive(Debug, Clone)]
pub struct Ones<'a> {
    words: &'a [u64],
    word_index: usize,
    current: u64,
}

impl Iterator for Ones<'_> {
    type Item = PieceIndex;

    fn next(&mut self) -> Option<PieceIndex> {
        next_one(self.words, &mut self.word_index, &mut self.current)
    }
}

fn next_one(words: &[u64], word_index: &mut usize, current: &mut u64) -> Option<PieceIndex> {
    loop {
        if *current != 0 {
            let bit = current.leading_zeros();
            *current &= !(1u64 << (WORD_BITS - 1 - bit));
            // word_index < len / 64 + 1 with len a u32, so this fits.
            let index = *word_index as u32 * WORD_BITS + bit;
            return Some(PieceIndex::new_unchecked(index));
        }
        *word_index += 1;
        *current = *words.get(*word_index)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(i: u32) -> PieceIndex {
        PieceIndex::new_unchecked(i)
    }

    #[test]
    fn bits_from_reads_64_pieces_at_any_offset() {
        let mut field = Bitfield::new(150);
        for i in [0, 3, 63, 64, 100, 149] {
            field.insert(piece(i));
        }
        for start in 0..160 {
            let expected = (0..64u32)
                .filter(|i| start + i < 150 && field.contains(piece(start + i)))
                .fold(0u64, |bits, i| bits | 1 << i);
            assert_eq!(field.bits_from(start), expected, "from {start}");
        }
        assert_eq!(field.bits_from(u32::MAX), 0);
    }

    #[test]
    fn bep3_bit_order() {
        let mut field = Bitfield::new(10);
        field.insert(piece(0));
        field.insert(piece(9));
        assert_eq!(field.to_bytes(), vec![0b1000_0000, 0b0100_0000]);
        assert_eq!(Bitfield::from_bytes(&[0x80, 0x40], 10).unwrap(), field);
    }

    #[test]
    fn rejects_wrong_length_and_spare_bits() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                expected: 2,
                pieces: 10
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBitsSet { pieces: 10 })
        );
        assert!(Bitfield::from_bytes(&[0xff, 0xc0], 10).unwrap().is_full());
    }

    #[test]
    fn out_of_range_pieces_are_never_members() {
        let mut field = Bitfield::new(3);
        assert!(!field.insert(piece(3)));
        assert!(!field.insert(piece(64)));
        assert!(!field.contains(piece(1000)));
        assert!(field.is_clear());
    }

    #[test]
    fn iterates_across_words() {
        let mut field = Bitfield::new(200);
        for i in [0, 63, 64, 127, 199] {
            field.insert(piece(i));
        }
        let ones: Vec<u32> = field.iter_ones().map(PieceIndex::get).collect();
        assert_eq!(ones, vec![0, 63, 64, 127, 199]);
        assert_eq!(field.iter_zeros().count(), 195);
        assert_eq!(field.count_zeros(), 195);
    }

    #[test]
    fn wanted_is_theirs_minus_mine() {
        let mut mine = Bitfield::new(8);
        let mut theirs = Bitfield::new(8);
        mine.insert(piece(1));
        theirs.insert(piece(1));
        assert!(!mine.wants_any_from(&theirs));
        theirs.insert(piece(5));
        assert!(mine.wants_any_from(&theirs));
        let wanted: Vec<u32> = mine
            .wanted_from(&theirs)
            .iter_ones()
            .map(PieceIndex::get)
            .collect();
        assert_eq!(wanted, vec![5]);
    }
}
