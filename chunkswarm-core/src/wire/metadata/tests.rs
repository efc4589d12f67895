use proptest::prelude::*;

use super::*;
use crate::metainfo::{Metainfo, TorrentBuilder};

/// A torrent whose info dictionary spans `pieces` metadata pieces or so
/// (20 bytes of piece hash per 16 KiB content piece).
fn torrent(content_pieces: usize) -> Metainfo {
    TorrentBuilder::new()
        .piece_length(16 << 10)
        .build_from_reader(
            "film.webm",
            vec![3u8; content_pieces * (16 << 10)].as_slice(),
        )
        .unwrap()
}

#[test]
fn messages_round_trip_and_read_webtorrents_bytes() {
    let messages = [
        MetadataMessage::Request { piece: 3 },
        MetadataMessage::Reject { piece: 0 },
        MetadataMessage::Data {
            piece: 1,
            total_size: 20_000,
            data: Bytes::from(vec![9u8; 20_000 - METADATA_PIECE_LEN]),
        },
    ];
    for message in messages {
        assert_eq!(MetadataMessage::decode(&message.encode()), Ok(message));
    }
    // As WebTorrent's ut-metadata writes them (keys in its order, extra keys).
    let request = Bytes::from_static(b"d8:msg_typei0e5:piecei0ee");
    assert_eq!(
        MetadataMessage::decode(&request),
        Ok(MetadataMessage::Request { piece: 0 })
    );
    let data = Bytes::from_static(b"d8:msg_typei1e5:piecei0e10:total_sizei3e4:xtrai1eeabc");
    assert_eq!(
        MetadataMessage::decode(&data),
        Ok(MetadataMessage::Data {
            piece: 0,
            total_size: 3,
            data: Bytes::from_static(b"abc")
        })
    );
}

#[test]
fn hostile_messages_are_errors() {
    let long = {
        let mut payload = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        payload.extend(vec![0u8; METADATA_PIECE_LEN + 1]);
        payload
    };
    let deep = vec![b'd'; 10_000];
    let cases: Vec<&[u8]> = vec![
        b"",
        b"le",
        b"i5e",
        b"d5:piecei0ee",
        b"d8:msg_typei7e5:piecei0ee",
        b"d8:msg_typei0e5:piecei-1ee",
        b"d8:msg_typei0e5:piecei4294967296ee",
        b"d8:msg_typei0e5:piecei0eeextra",
        b"d8:msg_typei1e5:piecei0ee",
        b"d8:msg_typei1e5:piecei0e10:total_sizei99999999999ee",
        b"d8:msg_typei1e5:piece",
        &long,
        &deep,
    ];
    for payload in cases {
        let payload = Bytes::copy_from_slice(payload);
        assert!(
            MetadataMessage::decode(&payload).is_err(),
            "{:?}",
            String::from_utf8_lossy(&payload[..payload.len().min(80)])
        );
    }
}

#[test]
fn pieces_from_anywhere_assemble_into_the_verified_info() {
    let torrent = torrent(2_000);
    let info = torrent.info().encoded().clone();
    assert!(info.len() > 2 * METADATA_PIECE_LEN, "{}", info.len());
    let mut assembler = MetadataAssembler::new(torrent.info_hash(), info.len() as u64).unwrap();
    let count = assembler.missing().count() as u32;
    assert_eq!(assembler.finish(), Err(MetadataError::Incomplete(count)));
    for piece in (0..count).rev() {
        let MetadataMessage::Data {
            piece,
            total_size,
            data,
        } = metadata_piece(&info, piece)
        else {
            panic!("piece {piece} rejected");
        };
        assembler.add(piece, total_size, &data).unwrap();
    }
    assert_eq!(
        metadata_piece(&info, count),
        MetadataMessage::Reject { piece: count }
    );
    assert_eq!(assembler.finish().unwrap(), *torrent.info());
}

#[test]
fn bad_pieces_are_refused_and_a_lie_is_caught_by_the_hash() {
    let torrent = torrent(1_000);
    let info = torrent.info().encoded().clone();
    let size = info.len() as u64;
    let hash = torrent.info_hash();
    assert_eq!(
        MetadataAssembler::new(hash, 0).unwrap_err(),
        MetadataError::BadSize(0)
    );
    assert_eq!(
        MetadataAssembler::new(hash, MAX_METADATA_LEN + 1).unwrap_err(),
        MetadataError::BadSize(MAX_METADATA_LEN + 1)
    );
    let mut assembler = MetadataAssembler::new(hash, size).unwrap();
    let count = assembler.missing().count() as u32;
    let piece = |i: u32| match metadata_piece(&info, i) {
        MetadataMessage::Data { data, .. } => data,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        assembler.add(0, size + 1, &piece(0)),
        Err(MetadataError::SizeMismatch {
            expected: size,
            got: size + 1
        })
    );
    assert_eq!(
        assembler.add(count, size, &piece(0)),
        Err(MetadataError::NoSuchPiece {
            piece: count,
            count
        })
    );
    assert_eq!(
        assembler.add(0, size, &piece(0).slice(1..)),
        Err(MetadataError::WrongLength {
            piece: 0,
            expected: METADATA_PIECE_LEN,
            got: METADATA_PIECE_LEN - 1
        })
    );
    // Every piece, one of them altered: the hash refuses the whole, and
    // the pieces are asked again.
    for i in 0..count {
        let mut data = piece(i).to_vec();
        if i == 1 {
            data[7] ^= 1;
        }
        assembler.add(i, size, &Bytes::from(data)).unwrap();
    }
    assert_eq!(assembler.finish(), Err(MetadataError::HashMismatch));
    assert_eq!(assembler.missing().count() as u32, count);
    // Bytes that hash right but are no info dictionary.
    let junk = Bytes::from_static(b"not bencode");
    let mut assembler = MetadataAssembler::new(InfoHash::of(&junk), junk.len() as u64).unwrap();
    assembler.add(0, junk.len() as u64, &junk).unwrap();
    assert!(matches!(assembler.finish(), Err(MetadataError::BadInfo(_))));
}

proptest! {
    #[test]
    fn any_payload_is_a_message_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let payload = Bytes::from(bytes);
        if let Ok(message) = MetadataMessage::decode(&payload) {
            prop_assert_eq!(MetadataMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn pieces_in_any_order_with_repeats_assemble(order in proptest::collection::vec(0u32..8, 0..40)) {
        static TORRENT: std::sync::OnceLock<Metainfo> = std::sync::OnceLock::new();
        let torrent = TORRENT.get_or_init(|| torrent(3_000));
        let info = torrent.info().encoded().clone();
        let mut assembler = MetadataAssembler::new(torrent.info_hash(), info.len() as u64).unwrap();
        let count = assembler.missing().count() as u32;
        for piece in order.into_iter().chain(0..count).filter(|p| *p < count) {
            if let MetadataMessage::Data { piece, total_size, data } = metadata_piece(&info, piece) {
                prop_assert_eq!(assembler.add(piece, total_size, &data), Ok(()));
            }
        }
        prop_assert_eq!(assembler.finish(), Ok(torrent.info().clone()));
    }
}
