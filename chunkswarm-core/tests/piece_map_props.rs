//! Bitfield algebra laws and availability bookkeeping, checked against a
//! `BTreeSet` model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chunkswarm_core::layout::{Layout, PieceIndex};
use chunkswarm_core::piece_map::{Availability, Bitfield};
use proptest::prelude::*;

/// A piece count and some members of it.
fn sets(count: usize) -> impl Strategy<Value = (u32, Vec<BTreeSet<u32>>)> {
    (1u32..300).prop_flat_map(move |len| {
        let set = proptest::collection::btree_set(0..len, 0..len as usize);
        (Just(len), proptest::collection::vec(set, count))
    })
}

fn field(layout: &Layout, members: &BTreeSet<u32>) -> Bitfield {
    let mut field = Bitfield::new(layout.piece_count());
    for &i in members {
        assert!(field.insert(layout.piece(i).unwrap()));
    }
    field
}

fn members(field: &Bitfield) -> BTreeSet<u32> {
    field.iter_ones().map(PieceIndex::get).collect()
}

proptest! {
    #[test]
    fn matches_the_set_model((len, s) in sets(3)) {
        let layout = Layout::new(u64::from(len), 1).unwrap();
        let [a, b, c] = [&s[0], &s[1], &s[2]].map(|m| field(&layout, m));

        prop_assert_eq!(members(&a), s[0].clone());
        prop_assert_eq!(a.count_ones() as usize, s[0].len());
        prop_assert_eq!(a.count_zeros() as usize, len as usize - s[0].len());
        let zeros: BTreeSet<u32> = a.iter_zeros().map(PieceIndex::get).collect();
        prop_assert_eq!(zeros, (0..len).filter(|i| !s[0].contains(i)).collect::<BTreeSet<_>>());

        let mut union = a.clone();
        union.union_with(&b);
        prop_assert_eq!(members(&union), &s[0] | &s[1]);
        let mut intersection = a.clone();
        intersection.intersect_with(&b);
        prop_assert_eq!(members(&intersection), &s[0] & &s[1]);
        let wanted = a.wanted_from(&b);
        prop_assert_eq!(members(&wanted), &s[1] - &s[0]);
        prop_assert_eq!(a.wants_any_from(&b), !(&s[1] - &s[0]).is_empty());
        prop_assert_eq!(a.is_subset(&b), s[0].is_subset(&s[1]));

        // Laws: commutativity, associativity, distributivity, De Morgan.
        let mut ba = b.clone();
        ba.union_with(&a);
        prop_assert_eq!(&ba, &union);
        let mut ab_c = union.clone();
        ab_c.union_with(&c);
        let mut bc = b.clone();
        bc.union_with(&c);
        let mut a_bc = a.clone();
        a_bc.union_with(&bc);
        prop_assert_eq!(&ab_c, &a_bc);
        let mut left = a.clone();
        left.intersect_with(&bc);
        let mut ac = a.clone();
        ac.intersect_with(&c);
        let mut right = intersection.clone();
        right.union_with(&ac);
        prop_assert_eq!(&left, &right);
        let mut not_union = union.clone();
        not_union.invert();
        let (mut not_a, mut not_b) = (a.clone(), b.clone());
        not_a.invert();
        not_b.invert();
        not_a.intersect_with(&not_b);
        prop_assert_eq!(&not_union, &not_a);
        let mut twice = a.clone();
        twice.invert();
        twice.invert();
        prop_assert_eq!(&twice, &a);
    }

    #[test]
    fn wire_bytes_round_trip((len, s) in sets(1)) {
        let layout = Layout::new(u64::from(len), 1).unwrap();
        let a = field(&layout, &s[0]);
        let bytes = a.to_bytes();
        prop_assert_eq!(bytes.len(), len.div_ceil(8) as usize);
        prop_assert_eq!(Bitfield::from_bytes(&bytes, len), Ok(a.clone()));
        prop_assert_eq!(a.is_full(), s[0].len() == len as usize);
    }

    #[test]
    fn arbitrary_payloads_parse_or_err(bytes in proptest::collection::vec(any::<u8>(), 0..64), len in 0u32..600) {
        if let Ok(field) = Bitfield::from_bytes(&bytes, len) {
            prop_assert_eq!(field.to_bytes(), bytes);
        }
    }

    #[test]
    fn availability_counts_every_holder(
        (len, peers) in sets(6),
        seeds in 0u32..4,
        leave in proptest::collection::vec(any::<bool>(), 6),
    ) {
        let layout = Layout::new(u64::from(len), 1).unwrap();
        let mut availability = Availability::new(len);
        let fields: Vec<Bitfield> = peers.iter().map(|m| field(&layout, m)).collect();
        fields.iter().for_each(|f| availability.add_peer(f));
        (0..seeds).for_each(|_| availability.add_seed());
        for (f, gone) in fields.iter().zip(&leave) {
            if *gone {
                availability.remove_peer(f);
            }
        }
        for piece in layout.pieces() {
            let holders = fields
                .iter()
                .zip(&leave)
                .filter(|(f, gone)| !**gone && f.contains(piece))
                .count() as u32;
            prop_assert_eq!(availability.count(piece), holders + seeds);
        }
    }
}
