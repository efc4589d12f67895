//! Which pieces who has: the compact [`Bitfield`] and swarm-wide [`Availability`].

mod availability;
mod bitfield;

pub use availability::Availability;
pub use bitfield::{Bitfield, BitfieldError, Ones};
