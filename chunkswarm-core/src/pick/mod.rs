//! Piece picking: which piece to start next from a given peer.
//!
//! The swarm tells a [`PiecePicker`] how availability changes and which pieces
//! it still wants, and asks it for a piece whenever a peer has room in its
//! request queue and no started piece to continue. Block-level choices
//! (finishing started pieces first, endgame duplicates) stay in the swarm, so
//! a picker only orders whole pieces.
//!
//! [`PriorityPicker`] implements the three strategies chunkswarm ships:
//! rarest-first, sequential and streaming (strict order inside the playback
//! window and ahead of it, rarest-first behind the playhead).

mod priority;

use std::ops::Range;

pub use priority::PriorityPicker;

use crate::layout::PieceIndex;
use crate::piece_map::Bitfield;

/// How a [`PriorityPicker`] orders pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The piece fewest connected peers hold, ties broken by a seeded shuffle.
    /// Spreads pieces evenly and keeps a swarm alive after seeds leave.
    #[default]
    RarestFirst,
    /// Lowest index first: for consumers that need the content in order.
    Sequential,
    /// Inside the playback window, strictly in playback (deadline) order;
    /// after it, in order too, since each piece ahead is the next one due;
    /// behind the playhead, rarest-first. Seeking moves the window.
    Streaming,
}

/// The peer a piece is being picked for.
#[derive(Debug, Clone, Copy)]
pub struct PeerView<'a> {
    /// The pieces it has.
    pub has: &'a Bitfield,
    /// Whether it has every piece (then `has` need not be consulted).
    pub is_seed: bool,
}

impl PeerView<'_> {
    /// Whether the peer has the piece.
    pub fn has(&self, piece: PieceIndex) -> bool {
        self.is_seed || self.has.contains(piece)
    }
}

/// Orders pieces for download. Implementations must be cheap: `pick` runs for
/// every request a peer has room for.
pub trait PiecePicker {
    /// `count` connected partial peers now hold the piece. Seeds are not
    /// reported: they hold every piece and so never change the order.
    fn availability_changed(&mut self, piece: PieceIndex, count: u32);

    /// Whether the piece is still wanted: `false` once verified, `true` again
    /// if it must be fetched anew.
    fn set_wanted(&mut self, piece: PieceIndex, wanted: bool);

    /// The pieces of the playback window, playhead first; empty when not
    /// streaming. Pickers without a notion of playback may ignore it.
    fn set_window(&mut self, window: Range<u32>);

    /// The best wanted piece that `peer` has and `eligible` accepts (the swarm
    /// rejects pieces already in progress), or `None`.
    fn pick(
        &mut self,
        peer: PeerView<'_>,
        eligible: &mut dyn FnMut(PieceIndex) -> bool,
    ) -> Option<PieceIndex>;

    /// A wanted piece no connected peer holds that `eligible` accepts, chosen
    /// so that independent peers rarely choose the same one: for the HTTP
    /// origin.
    fn pick_unavailable(
        &mut self,
        eligible: &mut dyn FnMut(PieceIndex) -> bool,
    ) -> Option<PieceIndex>;

    /// Bytes of state per piece, for the memory budget (excluding bitfields).
    fn state_bytes_per_piece(&self) -> usize;
}
