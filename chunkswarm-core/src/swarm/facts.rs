//! Swarm facts: what the tracker knows of the whole swarm, beyond the
//! neighbours a swarm sees itself.
//!
//! How the engine uses them: [`Swarm::handle_swarm_facts`].

use web_time::Instant;

use super::Swarm;
use crate::layout::PieceIndex;

/// The most pieces a facts summary describes, and the most it names to fetch.
pub const MAX_FACT_PIECES: usize = 64;

/// What the tracker tells one member of the swarm, given to
/// [`Swarm::handle_swarm_facts`], which says how the engine uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmFacts {
    /// Members of the swarm, this peer included.
    pub peers: u32,
    /// Members holding every piece.
    pub seeders: u32,
    /// The piece `holders[0]` counts.
    pub first: u32,
    /// How many members hold each piece from `first` on, seeders included
    /// (at most [`MAX_FACT_PIECES`]).
    pub holders: Vec<u32>,
    /// Pieces no member holds that this peer is to fetch from the origin (at
    /// most [`MAX_FACT_PIECES`]).
    pub fetch: Vec<u32>,
}

impl SwarmFacts {
    /// How many members held `piece`, if the summary covers it.
    pub fn holders_of(&self, piece: u32) -> Option<u32> {
        let offset = piece.checked_sub(self.first)?;
        self.holders.get(offset as usize).copied()
    }
}

/// The facts last heard.
#[derive(Debug, Default)]
pub(super) struct Facts {
    latest: Option<SwarmFacts>,
}

impl Facts {
    /// Some member held `piece` when the facts were told.
    pub(super) fn held_elsewhere(&self, piece: PieceIndex) -> bool {
        self.latest
            .as_ref()
            .and_then(|f| f.holders_of(piece.get()))
            .is_some_and(|n| n > 0)
    }

    /// Nobody held `piece`, and another member is to fetch it.
    pub(super) fn fetched_elsewhere(&self, piece: PieceIndex) -> bool {
        self.latest.as_ref().is_some_and(|f| {
            f.holders_of(piece.get()) == Some(0)
                && f.seeders == 0
                && !f.fetch.contains(&piece.get())
        })
    }

    /// The pieces this member is to fetch, in order.
    pub(super) fn to_fetch(&self) -> impl Iterator<Item = u32> + '_ {
        self.latest.iter().flat_map(|f| f.fetch.iter().copied())
    }
}

impl Swarm {
    /// The tracker's facts about the whole swarm arrived ([`SwarmFacts`]).
    /// Pieces out of range are ignored.
    ///
    /// A tracker that keeps the piece map (chunkswarm's, in the `x_cs_swarm`
    /// field of its announce reply, which the driver reads) tells each
    /// announcing peer how big the swarm is, how many members hold each piece
    /// around the peer's window, and which of the pieces nobody holds it is the
    /// one to fetch from the origin. The engine uses them to pay the origin once
    /// per piece across the swarm, when
    /// [`HttpConfig::use_swarm_facts`](super::HttpConfig::use_swarm_facts) is on
    /// (it is off by default: see its docs for what it measured):
    ///
    /// - a piece some member holds is not fetched from the origin for want of a
    ///   neighbour holding it (it reaches a neighbour through the swarm), only
    ///   for a playback deadline or when the download starves;
    /// - a piece nobody holds is fetched by the member the tracker names for it:
    ///   that member fetches it as soon as it is within its playback window (or
    ///   at once when not streaming), even while playback is urgent, since no
    ///   peer can bring it; the others leave it to that member and get it from
    ///   the swarm, rescuing it only for their own playback deadline.
    ///
    /// Facts age: they describe the swarm at the last announce. Holders only grow
    /// between announces (but for members leaving), so a piece counted as held
    /// stays held; a piece counted as unheld may have arrived since, which the
    /// rules check against the neighbours' bitfields before fetching.
    pub fn handle_swarm_facts(&mut self, now: Instant, mut facts: SwarmFacts) {
        let count = self.layout.piece_count();
        facts.holders.truncate(MAX_FACT_PIECES);
        let end = facts
            .first
            .saturating_add(facts.holders.len() as u32)
            .min(count);
        facts
            .holders
            .truncate(end.saturating_sub(facts.first) as usize);
        facts.fetch.retain(|p| *p < count);
        facts.fetch.sort_unstable();
        facts.fetch.dedup();
        facts.fetch.truncate(MAX_FACT_PIECES);
        self.facts.latest = Some(facts);
        if self.config.http.use_swarm_facts {
            self.maybe_fetch_http(now);
        }
    }

    /// The facts last heard from the tracker, if any.
    pub fn swarm_facts(&self) -> Option<&SwarmFacts> {
        self.facts.latest.as_ref()
    }
}
