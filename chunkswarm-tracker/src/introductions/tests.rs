use std::collections::HashSet;

use chunkswarm_core::layout::Layout;
use chunkswarm_core::piece_map::Bitfield;

use super::{Asker, Holdings, Member, RANKED_MEMBERS, choose};

const PIECES: u32 = 64;

#[derive(Debug)]
struct TestMember {
    field: Option<Bitfield>,
    seeder: bool,
    position: Option<u32>,
    /// Its queue is full: it cannot take an offer now.
    full: bool,
}

impl Member for TestMember {
    fn holdings(&self) -> Holdings<'_> {
        Holdings::reported(self.field.as_ref(), self.seeder)
    }

    fn position(&self) -> Option<u32> {
        self.position
    }

    fn can_take(&self) -> bool {
        !self.full
    }
}

fn field(pieces: impl IntoIterator<Item = u32>) -> Bitfield {
    let space = Layout::new(u64::from(PIECES), 1).unwrap();
    let mut field = Bitfield::new(PIECES);
    for i in pieces {
        field.insert(space.piece(i).unwrap());
    }
    field
}

fn holding(pieces: impl IntoIterator<Item = u32>, position: Option<u32>) -> TestMember {
    TestMember {
        field: Some(field(pieces)),
        seeder: false,
        position,
        full: false,
    }
}

fn webtorrent() -> TestMember {
    TestMember {
        field: None,
        seeder: false,
        position: None,
        full: false,
    }
}

fn seeder() -> TestMember {
    TestMember {
        field: None,
        seeder: true,
        position: None,
        full: false,
    }
}

fn asker(field: &Bitfield, position: Option<u32>) -> Asker<'_> {
    Asker {
        holdings: Holdings::Some(field),
        position,
        index: None,
        piece_count: PIECES,
    }
}

#[test]
fn one_offer_goes_to_the_member_holding_most_of_the_next_pieces() {
    let members = vec![
        holding(40..50, None),
        holding(18..26, Some(18)),
        holding(0..10, Some(3)),
        holding(10..26, Some(12)),
        webtorrent(),
    ];
    let mine = field(0..10);
    for seed in 0..50 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let picks = choose(&asker(&mine, Some(10)), &members, 1, &mut rng);
        assert_eq!(picks, vec![3], "seed {seed}");
    }
}

#[test]
fn holders_of_the_next_pieces_fill_the_ranked_slots() {
    // Holders of pieces 20.. at indices 0..6; the rest hold only what the
    // asker has, or pieces far from its position.
    let mut members: Vec<TestMember> = (0..6).map(|k| holding(20..30 + k, None)).collect();
    members.extend((0..20).map(|_| holding(0..20, None)));
    members.extend((0..20).map(|_| holding(50..60, None)));
    let mine = field(0..20);
    for seed in 0..50 {
        let mut rng = fastrand::Rng::with_seed(seed);
        // 4 offers: 3 ranked, 1 random.
        let picks = choose(&asker(&mine, Some(20)), &members, 4, &mut rng);
        assert_eq!(picks.len(), 4);
        assert!(picks[..3].iter().all(|&i| i < 6), "seed {seed}: {picks:?}");
    }
}

#[test]
fn without_a_position_any_holder_of_a_missing_piece_ranks_alike() {
    // Ten members hold only what the asker has; three hold a piece it lacks,
    // one near the start of the content and two far from it.
    let mut members: Vec<TestMember> = (0..10).map(|_| holding(0..10, None)).collect();
    members.extend([
        holding([40], None),
        holding([60], None),
        holding(0..33, None),
    ]);
    let mine = field(0..32);
    let mut firsts = HashSet::new();
    for seed in 0..50 {
        let mut rng = fastrand::Rng::with_seed(seed);
        // 4 offers: 3 ranked, 1 random.
        let picks = choose(&asker(&mine, None), &members, 4, &mut rng);
        let mut ranked = picks[..3].to_vec();
        ranked.sort_unstable();
        assert_eq!(ranked, vec![10, 11, 12], "seed {seed}: {picks:?}");
        firsts.insert(picks[0]);
    }
    assert_eq!(firsts.len(), 3, "ties are broken at random");
}

#[test]
fn a_member_the_asker_can_help_gets_a_slot() {
    let mut members: Vec<TestMember> = (0..10).map(|_| holding(0..40, Some(30))).collect();
    // Plays at piece 5 and lacks 5..20, which the asker holds.
    members.push(holding(0..5, Some(5)));
    let mine = field(0..20);
    for seed in 0..50 {
        let mut rng = fastrand::Rng::with_seed(seed);
        // 8 offers: 2 random, 6 ranked of which 1 for a member to help.
        let picks = choose(&asker(&mine, Some(20)), &members, 8, &mut rng);
        assert!(picks.contains(&10), "seed {seed}: {picks:?}");
    }
}

#[test]
fn members_without_bitfields_are_still_introduced() {
    let mut members: Vec<TestMember> = (0..20).map(|_| holding(0..64, None)).collect();
    members.push(webtorrent());
    let mine = field(0..1);
    let mut rng = fastrand::Rng::with_seed(1);
    let hits = (0..200)
        .filter(|_| choose(&asker(&mine, Some(0)), &members, 5, &mut rng).contains(&20))
        .count();
    assert!(hits > 0, "the WebTorrent member never got an offer");
    assert!(hits < 200, "the WebTorrent member took a ranked slot");
}

#[test]
fn an_asker_without_a_bitfield_meets_random_members() {
    let members: Vec<TestMember> = (0..30).map(|k| holding(0..k, None)).collect();
    let me = Asker {
        holdings: Holdings::Unknown,
        position: None,
        index: Some(7),
        piece_count: PIECES,
    };
    let mut rng = fastrand::Rng::with_seed(3);
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let picks = choose(&me, &members, 5, &mut rng);
        assert_eq!(picks.len(), 5);
        assert!(!picks.contains(&7));
        seen.extend(picks);
    }
    assert_eq!(seen.len(), 29, "random choice reaches every other member");
}

#[test]
fn seeders_are_not_introduced_to_seeders() {
    let members = vec![seeder(), holding(0..3, None), seeder(), webtorrent()];
    let me = Asker {
        holdings: Holdings::All,
        position: None,
        index: Some(0),
        piece_count: PIECES,
    };
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..20 {
        let mut picks = choose(&me, &members, 10, &mut rng);
        picks.sort_unstable();
        assert_eq!(picks, vec![1, 3]);
    }
}

#[test]
fn picks_are_distinct_eligible_and_at_most_want_in_any_swarm() {
    let mut rng = fastrand::Rng::with_seed(11);
    for size in [0usize, 1, 2, 7, 40, RANKED_MEMBERS + 300] {
        let members: Vec<TestMember> = (0..size)
            .map(|k| match k % 4 {
                0 => seeder(),
                1 => webtorrent(),
                _ => {
                    let position = rng.bool().then(|| rng.u32(..));
                    holding((0..PIECES).filter(|_| rng.bool()), position)
                }
            })
            .collect();
        let mine = field((0..PIECES).filter(|_| rng.bool()));
        for want in [0, 1, 3, 5, 10, 40] {
            // Positions past the content are clamped, not a panic.
            let me = Asker {
                index: (size > 0).then_some(size / 2),
                ..asker(&mine, Some(rng.u32(..)))
            };
            let picks = choose(&me, &members, want, &mut rng);
            let distinct: HashSet<usize> = picks.iter().copied().collect();
            assert_eq!(distinct.len(), picks.len());
            assert!(picks.len() <= want);
            assert!(picks.iter().all(|&i| i < size && Some(i) != me.index));
            if size >= 7 && want <= 3 {
                assert_eq!(picks.len(), want, "size {size} want {want}");
            }
        }
    }
}

#[test]
fn an_unknown_piece_count_falls_back_to_random() {
    let members: Vec<TestMember> = (0..5).map(|_| holding(0..5, None)).collect();
    let mine = field(0..1);
    let me = Asker {
        piece_count: 0,
        ..asker(&mine, Some(0))
    };
    let mut rng = fastrand::Rng::with_seed(2);
    assert_eq!(choose(&me, &members, 3, &mut rng).len(), 3);
}

#[test]
fn members_that_cannot_take_a_message_are_never_chosen() {
    let mut rng = fastrand::Rng::with_seed(3);
    let mine = field(0..8);
    for size in [3usize, 12, 60, RANKED_MEMBERS + 300] {
        // Every third member is full; the best holders of the asker's next
        // pieces among them.
        let members: Vec<TestMember> = (0..size)
            .map(|k| TestMember {
                full: k % 3 == 0,
                ..if k % 3 == 0 {
                    holding(8..40, None)
                } else if k % 3 == 1 {
                    holding(8..10, None)
                } else {
                    webtorrent()
                }
            })
            .collect();
        let open = members.iter().filter(|m| !m.full).count();
        for want in [1, 3, 10] {
            for me in [
                asker(&mine, Some(8)),
                Asker {
                    holdings: Holdings::Unknown,
                    ..asker(&mine, None)
                },
            ] {
                let picks = choose(&me, &members, want, &mut rng);
                assert!(picks.iter().all(|&i| !members[i].full), "{picks:?}");
                if size <= 60 {
                    assert_eq!(picks.len(), want.min(open), "size {size} want {want}");
                }
            }
        }
    }
    // Nobody can take one: nobody is chosen.
    let members: Vec<TestMember> = (0..5)
        .map(|_| TestMember {
            full: true,
            ..webtorrent()
        })
        .collect();
    assert!(choose(&asker(&mine, None), &members, 3, &mut rng).is_empty());
}
