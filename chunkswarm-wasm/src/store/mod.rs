//! Where a page keeps a torrent's verified pieces.
//!
//! - `opfs::OpfsStore` (wasm32 only): the default wherever the browser has the
//!   Origin Private File System with sync access handles. The content is one
//!   file on disk; the page holds no piece, so a film of several GiB fits in
//!   a tab, and a page reloaded or opened again later resumes from it.
//! - [`PieceBuffer`]: every piece in memory. The fallback where OPFS is
//!   missing or the torrent is open in another tab, and the `storage:
//!   'memory'` option; content must then fit in the page's memory.
//!
//! Either store is written only with pieces that passed their SHA-1 check,
//! and marks them in its [`HeldPieces`], which readers wait on, so a read
//! never returns unverified bytes.

mod held;
mod memory;
#[cfg(target_arch = "wasm32")]
pub mod opfs;

pub use held::{HeldPieces, ReadError};
pub use memory::PieceBuffer;
