//! Who receives an announcing peer's offers: a pure function of the swarm's
//! piece map.
//!
//! [`choose`] picks up to `want` members of a swarm for an announcing peer
//! (the *asker*), in this order of preference:
//!
//! 1. **Holders of its next pieces**: members holding most of the first
//!    [`NEXT_PIECES`] pieces the asker lacks from its playback position,
//!    within [`WINDOW`] pieces of the first it lacks. Seeders hold them all.
//!    An asker without a playback position (downloading rarest first) has
//!    no next pieces: any member holding a piece it lacks serves it as well
//!    as another.
//! 2. **Members it can help**: members that lack pieces the asker holds
//!    within [`WINDOW`] pieces of their own playback position, or, for
//!    members without one, that hold fewer pieces than the asker.
//! 3. **A random share** of about a quarter of `want`, drawn from every
//!    eligible member, so the overlay stays connected and members the piece
//!    map cannot rank (WebTorrent clients, which report no pieces) still
//!    meet others.
//!
//! Unused slots of one kind go to the others. An asker that reports no pieces
//! (a WebTorrent client) or holds everything gets random members, as before
//! the piece map existed; a seeder is never introduced to a seeder. Nobody is
//! introduced to itself, no member is chosen twice, and a member that cannot
//! take a message now ([`Member::can_take`]: its queue is full) is not chosen.
//!
//! The cost is bounded whatever the swarm's size: ranking looks at no more
//! than [`RANKED_MEMBERS`] members (all of them in smaller swarms; otherwise
//! a run of consecutive members from a random start, so every member is as
//! likely to be looked at), and each look is a few word operations on the
//! bitfields.

use chunkswarm_core::piece_map::Bitfield;

pub mod facts;

/// How many of a peer's missing pieces, from its playback position on, count
/// as its next pieces.
pub const NEXT_PIECES: u32 = 16;

/// How far past a peer's playback position (or its first missing piece) the
/// choice looks, in pieces: one bitfield word.
pub const WINDOW: u32 = 64;

/// The most members ranked for one choice.
pub const RANKED_MEMBERS: usize = 512;

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

impl<'a> Holdings<'a> {
    /// What a member reported: every piece once it is complete, else the
    /// pieces of its bitfield if it sent one.
    pub fn reported(pieces: Option<&'a Bitfield>, complete: bool) -> Self {
        match (pieces, complete) {
            (_, true) => Self::All,
            (Some(field), false) => Self::Some(field),
            (None, false) => Self::Unknown,
        }
    }

    /// The [`WINDOW`] pieces from `start` on, lowest bit first, limited to the
    /// `piece_count` pieces of the content.
    fn window(&self, start: u32, piece_count: u32) -> u64 {
        let bits = match self {
            Self::Unknown => 0,
            Self::All => u64::MAX,
            Self::Some(field) => field.bits_from(start),
        };
        bits & within(start, piece_count)
    }

    fn count(&self, piece_count: u32) -> u32 {
        match self {
            Self::Unknown => 0,
            Self::All => piece_count,
            Self::Some(field) => field.count_ones(),
        }
    }
}

/// The bits of the [`WINDOW`] from `start` that name pieces of the content.
fn within(start: u32, piece_count: u32) -> u64 {
    match piece_count.saturating_sub(start) {
        0 => 0,
        left if left >= WINDOW => u64::MAX,
        left => (1u64 << left) - 1,
    }
}

/// The lowest `n` set bits of `bits`.
fn lowest_ones(mut bits: u64, n: u32) -> u64 {
    let mut kept = 0;
    for _ in 0..n {
        if bits == 0 {
            break;
        }
        let lowest = bits & bits.wrapping_neg();
        kept |= lowest;
        bits ^= lowest;
    }
    kept
}

/// A swarm member as the choice sees it.
pub trait Member {
    /// The pieces it holds.
    fn holdings(&self) -> Holdings<'_>;
    /// The piece its playhead is in, if it plays while downloading.
    fn position(&self) -> Option<u32>;
    /// A stable key naming it (see [`facts::key_of`]), for sharing out the
    /// pieces nobody holds ([`facts::summarize`]); `None` takes no share.
    fn fetch_key(&self) -> Option<u64> {
        None
    }
    /// Whether a message sent to it now would reach it: `false` for a member
    /// whose queue is full (it does not read what it is sent), which is
    /// then never chosen, so that no offer goes to it only to be lost.
    fn can_take(&self) -> bool {
        true
    }
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
        Some(i) != asker.index
            && !(asker_seeds && matches!(members[i].holdings(), Holdings::All))
            && members[i].can_take()
    };
    let mut chosen = Vec::with_capacity(want.min(members.len()));
    if want == 0 || members.is_empty() {
        return chosen;
    }
    if matches!(asker.holdings, Holdings::Some(_)) && asker.piece_count > 0 {
        let random_share = (want + 2) / 4;
        rank(
            asker,
            members,
            want - random_share,
            &eligible,
            rng,
            &mut chosen,
        );
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

/// The first piece the asker lacks from its playback position on (from the
/// start if it has none, wrapping round); `None` if it lacks none.
fn first_missing(asker: &Asker<'_>) -> Option<u32> {
    let count = asker.piece_count;
    let position = asker.position.unwrap_or(0).min(count - 1);
    let starts = (position..count)
        .step_by(WINDOW as usize)
        .chain((0..position).step_by(WINDOW as usize));
    for start in starts {
        let missing = !asker.holdings.window(start, count) & within(start, count);
        if missing != 0 {
            return Some(start + missing.trailing_zeros());
        }
    }
    None
}

/// The asker's next pieces: where their window starts, and which of its
/// pieces they are. `None` if it lacks nothing.
fn next_pieces(asker: &Asker<'_>) -> Option<(u32, u64)> {
    let first = first_missing(asker)?;
    let missing =
        !asker.holdings.window(first, asker.piece_count) & within(first, asker.piece_count);
    Some((first, lowest_ones(missing, NEXT_PIECES)))
}

/// Adds up to `slots` ranked members to `chosen`: holders of the asker's next
/// pieces first, then members it can help (a quarter of the slots for those
/// when `slots` reaches 4 and some exist).
fn rank<M: Member>(
    asker: &Asker<'_>,
    members: &[M],
    slots: usize,
    eligible: &impl Fn(usize) -> bool,
    rng: &mut fastrand::Rng,
    chosen: &mut Vec<usize>,
) {
    let count = asker.piece_count;
    let (next_start, next_mask) = next_pieces(asker).unwrap_or((0, 0));
    let asker_count = asker.holdings.count(count);
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
        let holds_next = match (asker.position, asker.holdings, holdings) {
            (Some(_), _, _) => (holdings.window(next_start, count) & next_mask).count_ones(),
            (None, _, Holdings::Unknown) => 0,
            (None, Holdings::Some(mine), Holdings::Some(theirs)) => {
                u32::from(mine.wants_any_from(theirs))
            }
            (None, _, _) => 1,
        };
        let can_be_helped = match (holdings, member.position()) {
            // Nothing known to rank by: left to the random share.
            (Holdings::All | Holdings::Unknown, _) => false,
            (_, Some(position)) => {
                let from = position.min(count - 1);
                let lacks = !holdings.window(from, count) & within(from, count);
                asker.holdings.window(from, count) & lacks != 0
            }
            (_, None) => holdings.count(count) < asker_count,
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
    let best_first =
        |a: &Ranked, b: &Ranked| b.holds_next.cmp(&a.holds_next).then(a.tie.cmp(&b.tie));
    if slots < ranked.len() {
        ranked.select_nth_unstable_by(slots, best_first);
        ranked[..slots].sort_unstable_by(best_first);
    } else {
        ranked.sort_unstable_by(best_first);
    }
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
