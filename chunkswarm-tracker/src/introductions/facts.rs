//! Swarm facts for an announcing peer: a pure function of the piece map.
//!
//! [`summarize`] tells the asker what its engine needs to spend the origin
//! well ([`SwarmFacts`]): the swarm's size and seeders, how many members hold
//! each of the [`SPAN`] pieces from the first one it lacks at or after its
//! playback position, and which of those pieces that nobody holds it is to
//! fetch from the origin.
//!
//! Each unheld piece goes to one member: the one ranking highest for it, by
//! rendezvous hashing of its [`fetch_key`](Member::fetch_key) and the piece,
//! among the members that want it soon: those playing at most [`AHEAD`]
//! pieces before it, and those downloading without a playback position. Any
//! asker computes the same owner for a piece from the same map, so across
//! the swarm one member fetches it and the others get it from the swarm.
//!
//! Counting and ranking look at no more than [`RANKED_MEMBERS`] members, as
//! [`choose`](super::choose) does (all of them in smaller swarms); in a
//! larger swarm holder counts are scaled up from that sample, and a piece
//! held only outside it counts as unheld.

use chunkswarm_core::swarm::SwarmFacts;

use super::{Asker, Holdings, Member, RANKED_MEMBERS, first_missing, within};

/// How many pieces the facts describe, from the asker's first missing one.
pub const SPAN: u32 = 32;

/// How far past its playhead a streaming member takes its share of the
/// unheld pieces, in pieces: about a playback window.
pub const AHEAD: u32 = 16;

/// The facts for `asker` among `members` (see the [module docs](self)).
/// `rng` chooses the sample in swarms larger than [`RANKED_MEMBERS`].
pub fn summarize<M: Member>(
    asker: &Asker<'_>,
    members: &[M],
    rng: &mut fastrand::Rng,
) -> SwarmFacts {
    let count = asker.piece_count;
    let n = members.len();
    let seeders = members
        .iter()
        .filter(|m| matches!(m.holdings(), Holdings::All))
        .count();
    let mut facts = SwarmFacts {
        peers: u32::try_from(n).unwrap_or(u32::MAX),
        seeders: u32::try_from(seeders).unwrap_or(u32::MAX),
        ..SwarmFacts::default()
    };
    if count == 0 {
        return facts;
    }
    // From its playback position on, or its position if it lacks none.
    let first = first_missing(asker)
        .unwrap_or_else(|| asker.position.unwrap_or(0).min(asker.piece_count - 1));
    let span = SPAN.min(count - first);
    facts.first = first;
    facts.holders = vec![0; span as usize];
    let (start, sampled) = if n <= RANKED_MEMBERS {
        (0, n)
    } else {
        (rng.usize(0..n), RANKED_MEMBERS)
    };
    let sample = (0..sampled).map(|offset| (start + offset) % n);
    let mask = within(first, first + span);
    let mut wanting = Vec::new();
    for index in sample {
        let member = &members[index];
        let mut bits = member.holdings().window(first, count) & mask;
        while bits != 0 {
            facts.holders[bits.trailing_zeros() as usize] += 1;
            bits &= bits - 1;
        }
        let key = member.fetch_key();
        let streams_near = |position: u32| position <= first + span && first < position + AHEAD;
        let wants = match (member.holdings(), member.position()) {
            (Holdings::All, _) => false,
            (_, Some(position)) => streams_near(position),
            (Holdings::Some(_), None) => true,
            (Holdings::Unknown, None) => false,
        };
        if Some(index) != asker.index && wants {
            if let Some(key) = key {
                wanting.push((key, member.position()));
            }
        }
    }
    if sampled < n {
        // Scaled to the swarm; a piece seen held stays counted as held.
        for held in &mut facts.holders {
            let scaled = u64::from(*held) * n as u64 / sampled as u64;
            *held = u32::try_from(scaled).unwrap_or(u32::MAX).max(*held);
        }
    }
    let own_key = asker
        .index
        .and_then(|i| members.get(i))
        .and_then(Member::fetch_key);
    let Some(own_key) = own_key.filter(|_| seeders == 0) else {
        return facts;
    };
    for (offset, held) in facts.holders.iter().enumerate() {
        if *held > 0 {
            continue;
        }
        let piece = first + offset as u32;
        if !wants_soon(asker.position, piece) {
            continue;
        }
        let mine = rank(own_key, piece);
        let beaten = wanting
            .iter()
            .any(|(key, position)| wants_soon(*position, piece) && rank(*key, piece) > mine);
        if !beaten {
            facts.fetch.push(piece);
        }
    }
    facts
}

/// Whether a member playing at `position` (or downloading without one)
/// wants `piece` soon: at most [`AHEAD`] pieces past its playhead.
fn wants_soon(position: Option<u32>, piece: u32) -> bool {
    position.is_none_or(|p| p <= piece && piece < p + AHEAD)
}

/// A member's rendezvous rank for a piece.
fn rank(key: u64, piece: u32) -> u64 {
    mix(key ^ u64::from(piece).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A key for [`Member::fetch_key`] from a 20-byte peer id.
pub fn key_of(peer_id: &[u8; 20]) -> u64 {
    peer_id.chunks(8).fold(0xcbf2_9ce4_8422_2325, |h, chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        mix(h ^ u64::from_le_bytes(word))
    })
}

/// SplitMix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chunkswarm_core::layout::Layout;
    use chunkswarm_core::piece_map::Bitfield;

    use super::*;

    const PIECES: u32 = 100;

    struct Peer {
        field: Option<Bitfield>,
        seeder: bool,
        position: Option<u32>,
        key: Option<u64>,
    }

    impl Member for Peer {
        fn holdings(&self) -> Holdings<'_> {
            Holdings::reported(self.field.as_ref(), self.seeder)
        }

        fn position(&self) -> Option<u32> {
            self.position
        }

        fn fetch_key(&self) -> Option<u64> {
            self.key
        }
    }

    fn viewer(id: u8, pieces: impl IntoIterator<Item = u32>, position: u32) -> Peer {
        let space = Layout::new(u64::from(PIECES), 1).unwrap();
        let mut field = Bitfield::new(PIECES);
        for i in pieces {
            field.insert(space.piece(i).unwrap());
        }
        Peer {
            field: Some(field),
            seeder: false,
            position: Some(position),
            key: Some(key_of(&[id; 20])),
        }
    }

    fn asker(members: &[Peer], index: usize) -> Asker<'_> {
        Asker {
            holdings: members[index].holdings(),
            position: members[index].position,
            index: Some(index),
            piece_count: PIECES,
        }
    }

    fn facts_of(members: &[Peer], index: usize) -> SwarmFacts {
        summarize(
            &asker(members, index),
            members,
            &mut fastrand::Rng::with_seed(1),
        )
    }

    #[test]
    fn holders_are_counted_from_the_first_piece_the_asker_lacks() {
        let members = vec![
            viewer(1, 0..10, 2),
            viewer(2, 0..20, 12),
            viewer(3, [10, 11], 10),
            Peer {
                field: None,
                seeder: false,
                position: None,
                key: Some(7),
            },
        ];
        let facts = facts_of(&members, 0);
        assert_eq!((facts.peers, facts.seeders), (4, 0));
        assert_eq!(facts.first, 10);
        assert_eq!(facts.holders.len(), SPAN as usize);
        // Pieces 10 and 11: the second and third; 12..20: the second only.
        assert_eq!(&facts.holders[..12], &[2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
        assert!(facts.holders[10..].iter().all(|&n| n == 0));
        // Near the end of the content the summary is shorter.
        let late = vec![viewer(1, 0..90, 80)];
        let facts = facts_of(&late, 0);
        assert_eq!((facts.first, facts.holders.len()), (90, 10));
        // Alone, it fetches what it wants soon: up to AHEAD past its playhead.
        assert_eq!(facts.fetch, (90..80 + AHEAD).collect::<Vec<u32>>());
    }

    #[test]
    fn each_unheld_piece_goes_to_one_member_among_those_wanting_it() {
        // Five viewers playing near each other, and one far behind that
        // will not want the frontier pieces for a long time.
        let mut members: Vec<Peer> = (0..5)
            .map(|i| viewer(i as u8 + 1, 0..20 - i, 10 - i))
            .collect();
        members.push(viewer(9, 0..2, 0));
        let mut owners: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for i in 0..members.len() {
            for piece in facts_of(&members, i).fetch {
                owners.entry(piece).or_default().push(i);
            }
        }
        // The frontier pieces that front viewers want soon: one owner each.
        for piece in 20..10 + AHEAD {
            let owner = owners.get(&piece).map(Vec::as_slice);
            assert!(matches!(owner, Some([o]) if *o < 5), "{piece}: {owner:?}");
        }
        // Shared out, not all to one.
        let distinct: std::collections::BTreeSet<usize> =
            (20..10 + AHEAD).map(|p| owners[&p][0]).collect();
        assert!(distinct.len() >= 2, "{distinct:?}");
        // Held pieces go to nobody, nor pieces nobody wants soon.
        assert!(
            owners.keys().all(|&p| (20..10 + AHEAD).contains(&p)),
            "{owners:?}"
        );
        // The viewer far behind wants none of the frontier pieces soon.
        assert!(owners.values().flatten().all(|&o| o < 5), "{owners:?}");
    }

    #[test]
    fn a_seeder_or_a_keyless_asker_is_given_nothing_to_fetch() {
        let mut members = vec![viewer(1, 0..5, 0), viewer(2, 0..3, 0)];
        assert!(!facts_of(&members, 0).fetch.is_empty());
        members.push(Peer {
            field: None,
            seeder: true,
            position: None,
            key: Some(3),
        });
        let facts = facts_of(&members, 0);
        assert_eq!(facts.seeders, 1);
        assert!(facts.fetch.is_empty(), "{facts:?}");
        assert!(facts.holders.iter().all(|&n| n >= 1));
        let mut keyless = vec![viewer(1, 0..5, 0)];
        keyless[0].key = None;
        assert!(facts_of(&keyless, 0).fetch.is_empty());
    }

    #[test]
    fn a_large_swarm_is_sampled_and_counts_scaled_up() {
        let mut members: Vec<Peer> = (0..RANKED_MEMBERS * 2)
            .map(|i| viewer((i % 250) as u8, 0..3, 0))
            .collect();
        members[0] = viewer(1, 0..1, 0);
        let facts = facts_of(&members, 0);
        assert_eq!(facts.peers as usize, RANKED_MEMBERS * 2);
        assert_eq!(facts.first, 1);
        // Pieces 1 and 2: all but the asker hold them; scaled, roughly all.
        let expected = (RANKED_MEMBERS * 2) as u32;
        assert!(facts.holders[0] + 2 >= expected && facts.holders[0] <= expected);
        assert_eq!(facts.holders[2], 0);
    }
}
