//! What the tracker writes to clients, written and read here once: the
//! tracker writes with [`announce`], [`scrape`], [`offer`], [`answer`] and
//! [`failure`]; clients (the driver's
//! [`SignalIn::parse`](crate::driver::signal::SignalIn::parse)) read with
//! [`parse`] into a typed [`Reply`]. The tests of this module hold each
//! writer to the reader, field for field.
//!
//! Ids are binary strings, as WebTorrent's tracker writes them; offers and
//! answers are relayed verbatim. chunkswarm's additions to an announce
//! answer are `x_cs_ice` (ICE servers) and `x_cs_swarm` (swarm facts),
//! which a WebTorrent client ignores.

use std::borrow::Cow;

use super::ids::BinaryId;
use crate::metainfo::InfoHash;
use crate::swarm::SwarmFacts;

mod read;
#[cfg(test)]
mod tests;
mod write;

pub use read::{ReplyError, parse};
pub use write::{announce, answer, failure, failure_text, offer, push_json_str, scrape};

/// Swarm counts as `announce` and `scrape` answers carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    /// `completed` events seen.
    pub downloaded: u64,
}

/// A tracker message as a client reads it, borrowing from the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<'a> {
    /// Another peer's offer, relayed.
    Offer(Relayed<'a>),
    /// The answer to one of our offers, relayed.
    Answer(Relayed<'a>),
    /// The answer to an announce.
    Announced(Announced<'a>),
    /// The answer to a scrape.
    Scrape(Scraped),
    /// A refusal (`failure reason`).
    Failure(Failure<'a>),
}

/// An offer or answer relayed from another peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed<'a> {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The peer that made it (`peer_id`).
    pub from: BinaryId,
    /// The offer it makes or answers.
    pub offer_id: BinaryId,
    /// Its SDP.
    pub sdp: Cow<'a, str>,
}

/// The answer to an announce.
#[derive(Debug, Clone, PartialEq)]
pub struct Announced<'a> {
    /// The swarm.
    pub info_hash: InfoHash,
    /// Seconds until the next announce.
    pub interval: Option<u64>,
    /// Seeders.
    pub complete: Option<u64>,
    /// Leechers.
    pub incomplete: Option<u64>,
    /// The `warning message`, if any.
    pub warning: Option<Cow<'a, str>>,
    /// ICE servers (`x_cs_ice`): the JSON object's text as written.
    pub ice: Option<&'a str>,
    /// Swarm facts (`x_cs_swarm`).
    pub facts: Option<SwarmFacts>,
}

/// The answer to a scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scraped {
    /// Each swarm asked about, with its counts, in the order written.
    pub files: Vec<(InfoHash, SwarmCounts)>,
    /// `flags.min_request_interval`: seconds until the next scrape.
    pub min_request_interval: Option<u64>,
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The swarm, if the tracker named it.
    pub info_hash: Option<InfoHash>,
    /// The `failure reason`.
    pub reason: Cow<'a, str>,
}
