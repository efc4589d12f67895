//! The metainfo parser on hostile input: garbage and mutated torrents give a
//! value or a typed error, never a panic; created torrents round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chunkswarm_core::metainfo::{Metainfo, TorrentBuilder};
use proptest::prelude::*;

fn sample_torrent() -> Vec<u8> {
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    TorrentBuilder::new()
        .piece_length(16_384)
        .announce("wss://tracker.invalid/announce")
        .web_seed("https://origin.invalid/file")
        .build_from_reader("file.webm", content.as_slice())
        .unwrap()
        .to_bytes()
}

/// Bencode-looking garbage: tokens that often nest and almost parse.
fn bencodeish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"d".to_vec()),
        Just(b"l".to_vec()),
        Just(b"e".to_vec()),
        Just(b"4:info".to_vec()),
        Just(b"4:name".to_vec()),
        Just(b"6:length".to_vec()),
        Just(b"12:piece length".to_vec()),
        Just(b"6:pieces".to_vec()),
        Just(b"5:files".to_vec()),
        Just(b"4:path".to_vec()),
        (0u64..100_000).prop_map(|n| format!("i{n}e").into_bytes()),
        (0usize..30).prop_map(|n| format!("{n}:{}", "x".repeat(n)).into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metainfo::from_bytes(&bytes);
    }

    #[test]
    fn bencode_like_garbage_never_panics(bytes in bencodeish()) {
        if let Ok(metainfo) = Metainfo::from_bytes(&bytes) {
            // Whatever parses must re-serialise to something that parses the same.
            prop_assert_eq!(Metainfo::from_bytes(&metainfo.to_bytes()), Ok(metainfo));
        }
    }

    #[test]
    fn mutated_torrents_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = sample_torrent();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(metainfo) = Metainfo::from_bytes(&bytes) {
            let info = metainfo.info();
            prop_assert_eq!(info.piece_hashes().len() as u32, info.layout().piece_count());
        }
    }

    #[test]
    fn created_torrents_round_trip(
        len in 1usize..200_000,
        piece_length in prop_oneof![Just(16_384u32), Just(32_768), 1u32..70_000],
        seeds in proptest::collection::vec("https://[a-z]{1,8}\\.invalid/[a-z]{0,8}", 0..3),
    ) {
        let content = vec![0xA5u8; len];
        let mut builder = TorrentBuilder::new().piece_length(piece_length);
        for seed in &seeds {
            builder = builder.web_seed(seed.clone());
        }
        let created = builder.build_from_reader("f", content.as_slice()).unwrap();
        prop_assert_eq!(created.info().layout().piece_count() as usize, len.div_ceil(piece_length as usize));
        let parsed = Metainfo::from_bytes(&created.to_bytes()).unwrap();
        prop_assert_eq!(&parsed, &created);
        prop_assert_eq!(parsed.web_seeds(), seeds.as_slice());
    }
}
