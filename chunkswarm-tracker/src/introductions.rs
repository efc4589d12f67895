//! Who receives an announcing peer's offers: a pure function of the swarm's
//! piece map.
//!
//! [`choose`] picks up to `want` members of a swarm for an announcing peer
//! (the *asker*), in this order of preference:
//!
//! 1. **Holders of its next pieces**: members holding most of the first
//!    [`NEXT_PIECES`] pieces the asker lacks from its playback position (from
//!    piece 0 without one). Seeders hold them all.
//! 2. **Members it can help**: members that lack pieces the asker holds in
//!    their own next [`NEXT_PIECES`] pieces from their playback position, or,
//!    for members without one, that hold fewer pieces than the asker.
//! 3. **A random share** of about a quarter of `want`, drawn from every
//!    eligible member, so the overlay stays connected and members the piece
//!    map cannot rank (WebTorrent clients, which report no pieces) still
//!    meet others.
//!
//! Unused slots of one kind go to the others. An asker that reports no pieces
//! (a WebTorrent client) or holds everything gets random members, as before
//! the piece map existed; a seeder is never introduced to a seeder. Nobody is
//! introduced to itself, and no member is chosen twice.
//!
//! The cost is bounded whatever the swarm's size: ranking looks at no more
//! than [`RANKED_MEMBERS`] members (all of them in smaller swarms; otherwise
//! a run of consecutive members from a random start, so every member is as
//! likely to be looked at), and each look is a few bit tests.

use chunkswarm_core::layout::{Layout, PieceIndex};
use chunkswarm_core::piece_map::Bitfield;

/// How many of a peer's missing pieces, from its playback position on, count
/// as its next pieces.
pub const NEXT_PIECES: usize = 16;

/// How far past a member's playback position its next pieces are looked
/// for, so that ranking one member stays a few bit tests.
const MEMBER_SPAN: u32 = 4 * NEXT_PIECES as u32;

/// The most members ranked for one choice.
pub const RANKED_MEMBERS: usize = 1024;

/// What the piece map knows a peer holds.
#[derive(Debug, Clone, Copy)]
pub enum Holdings<'a> {
    /// Nothing reported (a WebTorrent client, or a peer that has not reported
    /// yet).
    Unknown,
    /// Every piece (a seeder).
    All,
    /// The pieces of this bitfield.
    Some(&'a Bitfield),
}

impl Holdings<'_> {
    fn has(&self, piece: PieceIndex) -> bool {
        match self {
            Self::Unknown => false,
            Self::All => true,
            Self::Some(field) => field.contains(piece),
        }
    }

    fn count(&self, piece_count: u32) -> u32 {
        match self {
            Self::Unknown => 0,
            Self::All => piece_count,
            Self::Some(field) => field.count_ones(),
        }
    }
}

/// A swarm member as the choice sees it.
pub trait Member {
    /// The pieces it holds.
    fn holdings(&self) -> Holdings<'_>;
    /// The piece its playhead is in, if it plays while downloading.
    fn position(&self) -> Option<u32>;
}

/// The announcing peer.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The pieces it holds.
    pub holdings: Holdings<'a>,
    /// The piece its playhead is in.
    pub position: Option<u32>,
    /// Its own index among the members, if it is one (it is never chosen).
    pub index: Option<usize>,
    /// Pieces of the content (the length of every reported bitfield).
    pub piece_count: u32,
}

/// Up to `want` distinct indices into `members`, most useful first (see the
/// [module docs](self)). Fewer when fewer members are eligible.
pub fn choose<M: Member>(
    asker: &Asker<'_>,
    members: &[M],
    want: usize,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    let asker_seeds = matches!(asker.holdings, Holdings::All);
    let eligible = |i: usize| {
        Some(i) != asker.index && !(asker_seeds && matches!(members[i].holdings(), Holdings::All))
    };
    let mut chosen = Vec::with_capacity(want.min(members.len()));
    if want == 0 || members.is_empty() {
        return chosen;
    }
    // One-byte pieces: the way to name piece `i` of `piece_count`.
    let space = Layout::new(u64::from(asker.piece_count), 1).ok();
    if let (Holdings::Some(_), Some(space)) = (asker.holdings, space) {
        let random_share = (want + 2) / 4;
        let ranking = Ranking {
            asker,
            space: &space,
        };
        ranking.rank(members, want - random_share, &eligible, rng, &mut chosen);
    }
    pick_random(members.len(), want, &eligible, rng, &mut chosen);
    chosen
}

/// How one ranked member serves the asker.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    index: usize,
    /// How many of the asker's next pieces it holds.
    holds_next: u32,
    /// It lacks pieces the asker holds and wants them.
    can_be_helped: bool,
    /// Breaks ties at random.
    tie: u32,
}

/// The asker and the piece indices of its content.
struct Ranking<'a, 'b> {
    asker: &'a Asker<'b>,
    space: &'a Layout,
}

impl Ranking<'_, '_> {
    /// Adds up to `slots` ranked members to `chosen`: holders of the asker's next
    /// pieces first, then members it can help (a quarter of the slots for those
    /// when `slots` reaches 4 and some exist).
    fn rank<M: Member>(
        &self,
        members: &[M],
        slots: usize,
        eligible: &impl Fn(usize) -> bool,
        rng: &mut fastrand::Rng,
        chosen: &mut Vec<usize>,
    ) {
        let asker = self.asker;
        let next: Vec<PieceIndex> = match asker.holdings {
            Holdings::All => Vec::new(),
            holdings => self
                .next_missing(holdings, asker.position, u32::MAX)
                .collect(),
        };
        let asker_count = asker.holdings.count(asker.piece_count);
        let n = members.len();
        let (start, span) = if n <= RANKED_MEMBERS {
            (0, n)
        } else {
            (rng.usize(0..n), RANKED_MEMBERS)
        };
        let mut ranked: Vec<Ranked> = Vec::with_capacity(span);
        for offset in 0..span {
            let index = (start + offset) % n;
            if !eligible(index) {
                continue;
            }
            let member = &members[index];
            let holdings = member.holdings();
            let holds_next = next.iter().filter(|&&p| holdings.has(p)).count() as u32;
            let can_be_helped = match (holdings, member.position()) {
                // Nothing known to rank by: left to the random share.
                (Holdings::All | Holdings::Unknown, _) => false,
                (_, Some(position)) => self
                    .next_missing(holdings, Some(position), MEMBER_SPAN)
                    .any(|p| asker.holdings.has(p)),
                (_, None) => holdings.count(asker.piece_count) < asker_count,
            };
            if holds_next > 0 || can_be_helped {
                ranked.push(Ranked {
                    index,
                    holds_next,
                    can_be_helped,
                    tie: rng.u32(..),
                });
            }
        }
        let helper_slots = if slots >= 4 { slots / 4 } else { 0 };
        let helped_exist = ranked.iter().any(|r| r.holds_next == 0 && r.can_be_helped);
        let holder_slots = if helped_exist {
            slots - helper_slots
        } else {
            slots
        };
        ranked.sort_unstable_by(|a, b| b.holds_next.cmp(&a.holds_next).then(a.tie.cmp(&b.tie)));
        let holders = ranked.iter().take_while(|r| r.holds_next > 0);
        chosen.extend(holders.take(holder_slots).map(|r| r.index));
        let room = slots.saturating_sub(chosen.len());
        let helped = ranked
            .iter()
            .filter(|r| r.can_be_helped && !chosen.contains(&r.index))
            .take(room)
            .map(|r| r.index)
            .collect::<Vec<_>>();
        chosen.extend(helped);
        // Slots left for want of helped members go back to the next holders.
        let room = slots.saturating_sub(chosen.len());
        let more = ranked
            .iter()
            .filter(|r| r.holds_next > 0 && !chosen.contains(&r.index))
            .take(room)
            .map(|r| r.index)
            .collect::<Vec<_>>();
        chosen.extend(more);
    }

    /// Up to [`NEXT_PIECES`] pieces missing from `holdings` among the `span`
    /// pieces from `position` on (clamped to the content, wrapping to the start).
    fn next_missing<'h>(
        &self,
        holdings: Holdings<'h>,
        position: Option<u32>,
        span: u32,
    ) -> impl Iterator<Item = PieceIndex> {
        let count = self.space.piece_count();
        let start = position.unwrap_or(0).min(count - 1);
        (start..count)
            .chain(0..start)
            .take(span as usize)
            .filter_map(|i| self.space.piece(i))
            .filter(move |&p| !holdings.has(p))
            .take(NEXT_PIECES)
    }
}

/// Fills `chosen` up to `want` with random eligible members not chosen yet.
fn pick_random(
    n: usize,
    want: usize,
    eligible: &impl Fn(usize) -> bool,
    rng: &mut fastrand::Rng,
    chosen: &mut Vec<usize>,
) {
    if chosen.len() >= want {
        return;
    }
    if n <= 4 * want + 16 {
        let mut candidates: Vec<usize> = (0..n)
            .filter(|&i| eligible(i) && !chosen.contains(&i))
            .collect();
        let take = (want - chosen.len()).min(candidates.len());
        for k in 0..take {
            let j = rng.usize(k..candidates.len());
            candidates.swap(k, j);
        }
        chosen.extend_from_slice(&candidates[..take]);
        return;
    }
    // A large swarm: sample with rejection; a few misses only mean fewer offers.
    for _ in 0..want * 8 {
        if chosen.len() >= want {
            break;
        }
        let i = rng.usize(0..n);
        if eligible(i) && !chosen.contains(&i) {
            chosen.push(i);
        }
    }
}

#[cfg(test)]
mod tests;
