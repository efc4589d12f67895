//! Piece and block geometry of a torrent's content.
//!
//! The content is one byte stream of `total_length` bytes (the files of a
//! multi-file torrent laid end to end) cut into pieces of `piece_length` bytes;
//! the last piece may be shorter. Each piece is fetched in blocks of
//! [`BLOCK_SIZE`] bytes, the size every BitTorrent client requests; the last
//! block of a piece may be shorter.
//!
//! A [`PieceIndex`] or a [`Block`] is only handed out by a [`Layout`], which
//! checked it against the geometry, so code holding one never bounds-checks
//! again. Indices from one layout must not be used with another.

use std::fmt;
use std::ops::Range;

/// The size of a block, the unit of a peer `request`: 16 KiB.
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// The piece length chunkswarm uses when creating torrents: 1 MiB.
pub const DEFAULT_PIECE_LENGTH: u32 = 1 << 20;

/// The largest piece length accepted: 64 MiB. Larger pieces would make every
/// piece buffer, and every hash failure, needlessly expensive.
pub const MAX_PIECE_LENGTH: u32 = 64 << 20;

/// Why a geometry cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The content has no bytes, so there is nothing to cut into pieces.
    #[error("the content is empty")]
    Empty,
    /// The piece length is zero or above [`MAX_PIECE_LENGTH`].
    #[error("piece length {0} is outside 1..={MAX_PIECE_LENGTH}")]
    PieceLength(u64),
    /// More pieces than a `u32` index can name.
    #[error("{total_length} bytes in pieces of {piece_length} is more than 2^32 - 1 pieces")]
    TooManyPieces {
        /// Content length in bytes.
        total_length: u64,
        /// Piece length in bytes.
        piece_length: u32,
    },
}

/// The index of a piece that exists in the [`Layout`] that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PieceIndex(u32);

impl PieceIndex {
    /// For sets that are sized from a layout and only yield members below their length.
    pub(crate) fn new_unchecked(index: u32) -> Self {
        Self(index)
    }

    /// The index as the wire protocol carries it.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The index for indexing slices.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A block of a piece: `length` bytes at offset `begin` inside piece `piece`,
/// with `begin` a multiple of [`BLOCK_SIZE`] and the length exactly what that
/// position holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block {
    piece: PieceIndex,
    begin: u32,
    length: u32,
}

impl Block {
    /// The piece the block belongs to.
    pub fn piece(self) -> PieceIndex {
        self.piece
    }

    /// Offset of the block inside its piece.
    pub fn begin(self) -> u32 {
        self.begin
    }

    /// Length of the block in bytes: [`BLOCK_SIZE`] except for a piece's last block.
    pub fn length(self) -> u32 {
        self.length
    }

    /// Position of the block inside its piece (0 for the first block).
    pub fn index_in_piece(self) -> u32 {
        self.begin / BLOCK_SIZE
    }
}

/// The geometry of a torrent: how many pieces, how long each is, and its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    total_length: u64,
    piece_length: u32,
    piece_count: u32,
}

impl Layout {
    /// Cuts `total_length` bytes into pieces of `piece_length` bytes.
    pub fn new(total_length: u64, piece_length: u64) -> Result<Self, LayoutError> {
        if total_length == 0 {
            return Err(LayoutError::Empty);
        }
        let piece_length = u32::try_from(piece_length)
            .ok()
            .filter(|len| (1..=MAX_PIECE_LENGTH).contains(len))
            .ok_or(LayoutError::PieceLength(piece_length))?;
        let piece_count =
            u32::try_from(total_length.div_ceil(u64::from(piece_length))).map_err(|_| {
                LayoutError::TooManyPieces {
                    total_length,
                    piece_length,
                }
            })?;
        Ok(Self {
            total_length,
            piece_length,
            piece_count,
        })
    }

    /// Length of the whole content in bytes.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Nominal piece length; every piece but the last has exactly this length.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Number of pieces (at least 1).
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// The piece with this wire index, if it exists.
    pub fn piece(&self, index: u32) -> Option<PieceIndex> {
        (index < self.piece_count).then_some(PieceIndex(index))
    }

    /// The last piece.
    pub fn last_piece(&self) -> PieceIndex {
        PieceIndex(self.piece_count - 1)
    }

    /// All pieces in order.
    pub fn pieces(&self) -> impl DoubleEndedIterator<Item = PieceIndex> + ExactSizeIterator {
        (0..self.piece_count).map(PieceIndex)
    }

    /// The piece that holds the content byte at `offset`, if it is inside the content.
    pub fn piece_at_offset(&self, offset: u64) -> Option<PieceIndex> {
        if offset >= self.total_length {
            return None;
        }
        // offset / piece_length < piece_count <= u32::MAX, so this cannot truncate.
        Some(PieceIndex((offset / u64::from(self.piece_length)) as u32))
    }

    /// Offset of the piece's first byte in the content.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        u64::from(piece.0) * u64::from(self.piece_length)
    }

    /// Length of this piece in bytes.
    pub fn piece_len(&self, piece: PieceIndex) -> u32 {
        let rest = self.total_length - self.piece_offset(piece);
        // rest > 0 for an existing piece; min() keeps it within u32.
        rest.min(u64::from(self.piece_length)) as u32
    }

    /// Byte range of the piece in the content, e.g. for an HTTP `Range` request.
    pub fn piece_range(&self, piece: PieceIndex) -> Range<u64> {
        let start = self.piece_offset(piece);
        start..start + u64::from(self.piece_len(piece))
    }

    /// Number of blocks in this piece.
    pub fn block_count(&self, piece: PieceIndex) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_SIZE)
    }

    /// The `index`-th block of the piece, if the piece has that many blocks.
    pub fn block_at(&self, piece: PieceIndex, index: u32) -> Option<Block> {
        let begin = index.checked_mul(BLOCK_SIZE)?;
        let piece_len = self.piece_len(piece);
        (begin < piece_len).then(|| Block {
            piece,
            begin,
            length: (piece_len - begin).min(BLOCK_SIZE),
        })
    }

    /// The blocks of a piece in order.
    pub fn blocks(&self, piece: PieceIndex) -> impl ExactSizeIterator<Item = Block> + '_ {
        let piece_len = self.piece_len(piece);
        (0..self.block_count(piece)).map(move |i| {
            let begin = i * BLOCK_SIZE;
            Block {
                piece,
                begin,
                length: (piece_len - begin).min(BLOCK_SIZE),
            }
        })
    }

    /// The block a peer names by `(index, begin, length)` in a `request`,
    /// `piece`, `cancel` or `reject` message, if it is exactly one of this
    /// layout's blocks.
    pub fn block(&self, index: u32, begin: u32, length: u32) -> Option<Block> {
        let piece = self.piece(index)?;
        if begin % BLOCK_SIZE != 0 {
            return None;
        }
        self.block_at(piece, begin / BLOCK_SIZE)
            .filter(|block| block.length == length)
    }

    /// Offset of the block's first byte in the content.
    pub fn block_offset(&self, block: Block) -> u64 {
        self.piece_offset(block.piece) + u64::from(block.begin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn exact_multiple_has_full_last_piece() {
        let layout = Layout::new(4 * MIB, MIB).unwrap();
        assert_eq!(layout.piece_count(), 4);
        assert_eq!(layout.piece_len(layout.last_piece()), MIB as u32);
        assert_eq!(layout.block_count(layout.last_piece()), 64);
    }

    #[test]
    fn one_byte_over_makes_a_one_byte_piece_and_block() {
        let layout = Layout::new(MIB + 1, MIB).unwrap();
        assert_eq!(layout.piece_count(), 2);
        let last = layout.last_piece();
        assert_eq!(layout.piece_len(last), 1);
        assert_eq!(layout.piece_range(last), MIB..MIB + 1);
        let blocks: Vec<_> = layout.blocks(last).collect();
        assert_eq!(blocks.len(), 1);
        assert_eq!((blocks[0].begin(), blocks[0].length()), (0, 1));
    }

    #[test]
    fn short_last_block() {
        let layout = Layout::new(MIB + 20_000, MIB).unwrap();
        let last = layout.last_piece();
        let blocks: Vec<_> = layout.blocks(last).map(|b| b.length()).collect();
        assert_eq!(blocks, vec![BLOCK_SIZE, 20_000 - BLOCK_SIZE]);
        assert_eq!(
            layout.block(1, BLOCK_SIZE, 20_000 - BLOCK_SIZE),
            layout.block_at(last, 1)
        );
    }

    #[test]
    fn wire_block_must_match_geometry_exactly() {
        let layout = Layout::new(3 * MIB, MIB).unwrap();
        assert!(layout.block(0, 0, BLOCK_SIZE).is_some());
        assert!(
            layout.block(3, 0, BLOCK_SIZE).is_none(),
            "piece out of range"
        );
        assert!(layout.block(0, 1, BLOCK_SIZE).is_none(), "unaligned begin");
        assert!(layout.block(0, 0, BLOCK_SIZE - 1).is_none(), "short length");
        assert!(
            layout.block(0, MIB as u32, BLOCK_SIZE).is_none(),
            "begin past piece"
        );
        assert!(
            layout.block(0, u32::MAX - 3, 4).is_none(),
            "overflowing begin"
        );
    }

    #[test]
    fn piece_lengths_not_multiple_of_block() {
        let layout = Layout::new(100_000, 40_000).unwrap();
        assert_eq!(layout.piece_count(), 3);
        assert_eq!(layout.piece_len(layout.last_piece()), 20_000);
        let lens: Vec<_> = layout.blocks(PieceIndex(0)).map(|b| b.length()).collect();
        assert_eq!(lens, vec![BLOCK_SIZE, BLOCK_SIZE, 40_000 - 2 * BLOCK_SIZE]);
    }

    #[test]
    fn blocks_tile_every_piece() {
        let layout = Layout::new(5 * MIB + 12_345, 3 * MIB / 2).unwrap();
        let mut next = 0u64;
        for piece in layout.pieces() {
            for block in layout.blocks(piece) {
                assert_eq!(layout.block_offset(block), next);
                next += u64::from(block.length());
            }
        }
        assert_eq!(next, layout.total_length());
    }

    #[test]
    fn rejects_bad_geometry() {
        assert_eq!(Layout::new(0, MIB), Err(LayoutError::Empty));
        assert_eq!(Layout::new(1, 0), Err(LayoutError::PieceLength(0)));
        assert_eq!(
            Layout::new(1, u64::from(MAX_PIECE_LENGTH) + 1),
            Err(LayoutError::PieceLength(u64::from(MAX_PIECE_LENGTH) + 1))
        );
        assert!(matches!(
            Layout::new(u64::MAX, 1),
            Err(LayoutError::TooManyPieces { .. })
        ));
    }

    #[test]
    fn piece_at_offset() {
        let layout = Layout::new(2 * MIB + 5, MIB).unwrap();
        assert_eq!(layout.piece_at_offset(0), layout.piece(0));
        assert_eq!(layout.piece_at_offset(MIB), layout.piece(1));
        assert_eq!(layout.piece_at_offset(2 * MIB + 4), layout.piece(2));
        assert_eq!(layout.piece_at_offset(2 * MIB + 5), None);
    }
}
