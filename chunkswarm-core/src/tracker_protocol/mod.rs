//! The WebTorrent WebSocket tracker protocol, written once for both sides:
//! the client side in [`driver::signal`](crate::driver::signal) and the
//! `chunkswarm-tracker` crate.
//!
//! - [`ids`]: info hashes, peer ids and offer ids travel as JSON strings of
//!   20 characters U+0000 to U+00FF, one per byte, as WebTorrent writes them;
//!   read and written here without allocating.
//! - [`request`]: what a client sends (`announce` with offers or an answer,
//!   `scrape`, chunkswarm's `x_cs_have`), parsed by the tracker without
//!   copying offers or answers. The driver writes the same messages with
//!   [`SignalOut::to_json`](crate::driver::signal::SignalOut::to_json); the
//!   tests here hold each to the other.
//! - [`reply`]: what the tracker writes back (announce and scrape answers,
//!   offers and answers relayed between peers, refusals), written by the
//!   tracker with its writers and read by clients with
//!   [`reply::parse`] into a typed [`Reply`]; the driver's
//!   [`SignalIn::parse`](crate::driver::signal::SignalIn::parse) is built
//!   on it. The tests hold every writer to the reader, field for field.
//!
//! chunkswarm's additions (`x_cs_bitfield`, `x_cs_pieces`, `x_cs_position`,
//! the `x_cs_have` action; `x_cs_ice` and `x_cs_swarm` in announce replies) are extra fields
//! and actions that a WebTorrent client or tracker ignores.

pub mod ids;
pub mod reply;
pub mod request;
#[cfg(test)]
mod tests;

pub use ids::BinaryId;
pub use reply::{Reply, ReplyError, SwarmCounts};
pub use request::{
    Action, Announce, AnnounceEvent, Answer, Have, MessageError, Offer, Refusal, Request, parse,
};
