//! The fetch against a real [`Swarm`] seeder and against hand-driven peers
//! that lie, reject, stall or break the protocol.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use web_time::Instant;

use super::*;
use crate::metainfo::TorrentBuilder;
use crate::piece_map::Bitfield;
use crate::swarm::{Output, Swarm, SwarmConfig};
use crate::wire::metadata::METADATA_PIECE_LEN;

const FETCHER: PeerId = *b"-CS0001-fetcher00001";

fn peer_id(i: u8) -> PeerId {
    let mut id = *b"-CS0001-peer00000000";
    id[19] = i;
    id
}

/// An info dictionary of two metadata pieces (1,000 piece hashes).
fn two_piece_info() -> Info {
    let content = vec![7u8; 1000 * 16 * 1024];
    let info = TorrentBuilder::new()
        .piece_length(16 * 1024)
        .build_from_reader("film.webm", content.as_slice())
        .unwrap()
        .info()
        .clone();
    assert!(info.encoded().len() > METADATA_PIECE_LEN);
    assert!(info.encoded().len() <= 2 * METADATA_PIECE_LEN);
    info
}

fn seeder(now: Instant, info: &Info, id: u8) -> Swarm {
    let pieces = info.layout().piece_count();
    let config = SwarmConfig {
        peer_id: peer_id(id),
        ..SwarmConfig::default()
    };
    Swarm::new(now, info.clone(), Bitfield::full(pieces), config)
}

/// Moves bytes between the fetch and its seeders (`seeders[i]` is the
/// fetch's `PeerKey(i)`) until both are quiet; returns what the fetch said
/// besides sends.
fn pump(now: Instant, fetch: &mut MetadataFetch, seeders: &mut [Swarm]) -> Vec<FetchOutput> {
    let mut said = Vec::new();
    loop {
        let mut moved = false;
        while let Some(output) = fetch.poll_output() {
            moved = true;
            match output {
                FetchOutput::Send { peer, data } => {
                    seeders[peer.0 as usize].handle_peer_data(now, PeerKey(0), &data);
                }
                other => said.push(other),
            }
        }
        for (i, seeder) in seeders.iter_mut().enumerate() {
            while let Some(output) = seeder.poll_output() {
                if let Output::Send { data, .. } = output {
                    moved = true;
                    fetch.handle_peer_data(now, PeerKey(i as u64), &data);
                }
            }
        }
        if !moved {
            return said;
        }
    }
}

fn done_info(said: &[FetchOutput]) -> Option<&Info> {
    said.iter().find_map(|o| match o {
        FetchOutput::Done(info) => Some(info),
        _ => None,
    })
}

#[test]
fn the_dictionary_comes_from_a_chunkswarm_seeder() {
    let now = Instant::now();
    let info = two_piece_info();
    let mut seeders = [seeder(now, &info, 1)];
    let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);
    fetch.handle_peer_connected(now, PeerKey(0));
    seeders[0].handle_peer_connected(now, PeerKey(0));
    let said = pump(now, &mut fetch, &mut seeders);
    assert_eq!(done_info(&said), Some(&info));
    assert!(fetch.is_done());
    assert_eq!(fetch.poll_timeout(), None);
    // Once done the connection is still read (for the download to take
    // over), and a peer that breaks the protocol is still closed.
    fetch.handle_peer_data(now, PeerKey(0), b"garbage");
    assert!(matches!(
        fetch.poll_output(),
        Some(FetchOutput::Close {
            peer: PeerKey(0),
            reason: FetchCloseReason::Protocol(_)
        })
    ));
    assert_eq!(fetch.poll_output(), None);
    assert_eq!(fetch.peer_count(), 0);
}

/// A hand-driven peer: its side of the handshake and extension handshake.
fn fake_peer(info_hash: InfoHash, id: PeerId, metadata_size: Option<u64>) -> BytesMut {
    let mut wire = BytesMut::new();
    Handshake {
        reserved: Reserved::NONE.with_fast(true).with_extended(true),
        info_hash: *info_hash.as_bytes(),
        peer_id: id,
    }
    .encode(&mut wire);
    let handshake = ExtensionHandshake {
        extensions: BTreeMap::from([(METADATA_EXTENSION.to_owned(), 5)]),
        metadata_size,
        ..ExtensionHandshake::default()
    };
    Message::Extended {
        id: EXTENSION_HANDSHAKE_ID,
        payload: handshake.encode(),
    }
    .encode(&mut wire);
    wire
}

fn metadata_message(message: &MetadataMessage) -> Bytes {
    let mut wire = BytesMut::new();
    Message::Extended {
        id: LOCAL_METADATA_ID,
        payload: message.encode(),
    }
    .encode(&mut wire);
    wire.freeze()
}

/// The `ut_metadata` requests among the fetch's outputs to `peer` (sent
/// with the id 5 our fake peers chose), and everything else it said.
fn requests_to(fetch: &mut MetadataFetch, peer: PeerKey) -> (Vec<u32>, Vec<FetchOutput>) {
    let mut requests = Vec::new();
    let mut other = Vec::new();
    while let Some(output) = fetch.poll_output() {
        match output {
            FetchOutput::Send { peer: to, data } if to == peer => {
                let mut decoder = Decoder::new(DecoderLimits::new());
                decoder.extend(&data);
                while let Ok(Some(message)) = decoder.decode() {
                    if let Message::Extended { id: 5, payload } = message
                        && let Ok(MetadataMessage::Request { piece }) =
                            MetadataMessage::decode(&payload)
                    {
                        requests.push(piece);
                    }
                }
            }
            FetchOutput::Send { .. } => {}
            output => other.push(output),
        }
    }
    (requests, other)
}

/// Connects a fake peer under `key` and returns the pieces it was asked for.
fn connect_fake(
    now: Instant,
    fetch: &mut MetadataFetch,
    key: u64,
    id: u8,
    size: Option<u64>,
) -> (Vec<u32>, Vec<FetchOutput>) {
    fetch.handle_peer_connected(now, PeerKey(key));
    let wire = fake_peer(fetch.info_hash(), peer_id(id), size);
    // The handshake split in the middle, as a data channel may deliver it.
    let (a, b) = wire.split_at(40);
    fetch.handle_peer_data(now, PeerKey(key), a);
    fetch.handle_peer_data(now, PeerKey(key), b);
    requests_to(fetch, PeerKey(key))
}

#[test]
fn a_peer_that_lies_is_named_banned_and_an_honest_one_asked_next() {
    let now = Instant::now();
    let info = two_piece_info();
    let size = info.encoded().len() as u64;
    let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);

    // The liar, with the right size but other bytes.
    let (asked, _) = connect_fake(now, &mut fetch, 7, 9, Some(size));
    assert_eq!(asked, [0, 1]);
    let mut lie = info.encoded().to_vec();
    lie[100] ^= 1;
    let lie = Bytes::from(lie);
    for piece in [1u32, 0] {
        let answer = crate::wire::metadata::metadata_piece(&lie, piece);
        fetch.handle_peer_data(now, PeerKey(7), &metadata_message(&answer));
    }
    let (_, said) = requests_to(&mut fetch, PeerKey(7));
    assert_eq!(
        said,
        [
            FetchOutput::BadMetadata {
                peer_id: peer_id(9),
                error: MetadataError::HashMismatch
            },
            FetchOutput::Close {
                peer: PeerKey(7),
                reason: FetchCloseReason::Banned
            },
        ]
    );
    assert_eq!(fetch.banned().collect::<Vec<_>>(), [&peer_id(9)]);

    // It comes back under another connection: refused at the handshake.
    let (asked, said) = connect_fake(now, &mut fetch, 8, 9, Some(size));
    assert!(asked.is_empty());
    assert!(said.contains(&FetchOutput::Close {
        peer: PeerKey(8),
        reason: FetchCloseReason::Banned
    }));

    // An honest seeder gives the real dictionary.
    let mut seeders: Vec<Swarm> = (0..3).map(|_| seeder(now, &info, 2)).collect();
    fetch.handle_peer_connected(now, PeerKey(2));
    seeders[2].handle_peer_connected(now, PeerKey(0));
    let said = pump(now, &mut fetch, &mut seeders);
    assert_eq!(done_info(&said), Some(&info));
}

#[test]
fn a_reject_or_a_stall_moves_on_to_the_next_peer_and_back_later() {
    let now = Instant::now();
    let info = two_piece_info();
    let size = info.encoded().len() as u64;
    let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);
    let (asked, _) = connect_fake(now, &mut fetch, 1, 1, Some(size));
    assert_eq!(asked, [0, 1]);
    // A second peer waits its turn.
    let (asked, _) = connect_fake(now, &mut fetch, 2, 2, Some(size));
    assert!(asked.is_empty());

    // The first rejects: the second is asked at once.
    let reject = metadata_message(&MetadataMessage::Reject { piece: 0 });
    fetch.handle_peer_data(now, PeerKey(1), &reject);
    assert!(requests_to(&mut fetch, PeerKey(1)).0.is_empty());
    assert_eq!(fetch.poll_timeout(), Some(now + PIECE_TIMEOUT));

    // The second gives one piece, then stalls: given up after the timeout.
    let later = now + Duration::from_secs(3);
    let piece = crate::wire::metadata::metadata_piece(info.encoded(), 0);
    fetch.handle_peer_data(later, PeerKey(2), &metadata_message(&piece));
    assert_eq!(fetch.poll_timeout(), Some(later + PIECE_TIMEOUT));
    fetch.handle_timeout(later + PIECE_TIMEOUT - Duration::from_millis(1));
    assert!(fetch.poll_output().is_none(), "not yet");
    let stalled = later + PIECE_TIMEOUT;
    fetch.handle_timeout(stalled);
    assert!(fetch.poll_output().is_none(), "the first still rests");
    assert_eq!(fetch.poll_timeout(), Some(now + RETRY_AFTER));

    // Once rested, the first is asked again, from the start.
    fetch.handle_timeout(now + RETRY_AFTER);
    let (asked, _) = requests_to(&mut fetch, PeerKey(1));
    assert_eq!(asked, [0, 1]);
    for piece in [0, 1] {
        let answer = crate::wire::metadata::metadata_piece(info.encoded(), piece);
        fetch.handle_peer_data(now + RETRY_AFTER, PeerKey(1), &metadata_message(&answer));
    }
    let (_, said) = requests_to(&mut fetch, PeerKey(1));
    assert_eq!(said, [FetchOutput::Done(info)]);
}

#[test]
fn bad_sizes_and_pieces_close_the_peer() {
    let now = Instant::now();
    let info = two_piece_info();
    let size = info.encoded().len() as u64;
    let hash = info.info_hash();
    for bad in [None, Some(0), Some(MAX_METADATA_LEN + 1), Some(u64::MAX)] {
        let mut fetch = MetadataFetch::new(hash, FETCHER);
        let (asked, said) = connect_fake(now, &mut fetch, 1, 1, bad);
        assert!(asked.is_empty(), "{bad:?}");
        assert_eq!(
            said,
            [FetchOutput::Close {
                peer: PeerKey(1),
                reason: FetchCloseReason::NoMetadata
            }],
            "{bad:?}"
        );
    }

    let last_len = (size as usize) - METADATA_PIECE_LEN;
    let cases = [
        // A piece not asked for is ignored, so these are pieces asked for.
        (
            MetadataMessage::Data {
                piece: 1,
                total_size: size,
                data: Bytes::from(vec![0; last_len + 1]),
            },
            MetadataError::WrongLength {
                piece: 1,
                expected: last_len,
                got: last_len + 1,
            },
        ),
        (
            MetadataMessage::Data {
                piece: 0,
                total_size: size + 1,
                data: Bytes::from(vec![0; METADATA_PIECE_LEN]),
            },
            MetadataError::SizeMismatch {
                expected: size,
                got: size + 1,
            },
        ),
    ];
    for (message, error) in cases {
        let mut fetch = MetadataFetch::new(hash, FETCHER);
        connect_fake(now, &mut fetch, 1, 1, Some(size));
        fetch.handle_peer_data(now, PeerKey(1), &metadata_message(&message));
        let (_, said) = requests_to(&mut fetch, PeerKey(1));
        assert_eq!(
            said[0],
            FetchOutput::BadMetadata {
                peer_id: peer_id(1),
                error
            }
        );
    }

    // A piece past the end is never asked for: ignored, the peer kept.
    let mut fetch = MetadataFetch::new(hash, FETCHER);
    connect_fake(now, &mut fetch, 1, 1, Some(size));
    let far = MetadataMessage::Data {
        piece: 9,
        total_size: size,
        data: Bytes::from_static(b"x"),
    };
    fetch.handle_peer_data(now, PeerKey(1), &metadata_message(&far));
    assert!(requests_to(&mut fetch, PeerKey(1)).1.is_empty());
    assert_eq!(fetch.peer_count(), 1);
}

#[test]
fn wrong_torrents_ourselves_and_garbage_are_closed() {
    let now = Instant::now();
    let info = two_piece_info();
    let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);

    fetch.handle_peer_connected(now, PeerKey(1));
    let other = InfoHash::of(b"another torrent");
    fetch.handle_peer_data(now, PeerKey(1), &fake_peer(other, peer_id(1), Some(9)));
    fetch.handle_peer_connected(now, PeerKey(2));
    let mut ourselves = BytesMut::new();
    Handshake {
        reserved: Reserved::NONE.with_extended(true),
        info_hash: *info.info_hash().as_bytes(),
        peer_id: FETCHER,
    }
    .encode(&mut ourselves);
    fetch.handle_peer_data(now, PeerKey(2), &ourselves);
    fetch.handle_peer_connected(now, PeerKey(3));
    fetch.handle_peer_data(now, PeerKey(3), &[0xFF; 80]);
    // No extension protocol: nothing to fetch metadata with.
    fetch.handle_peer_connected(now, PeerKey(4));
    let mut plain = BytesMut::new();
    Handshake {
        reserved: Reserved::NONE.with_fast(true),
        info_hash: *info.info_hash().as_bytes(),
        peer_id: peer_id(4),
    }
    .encode(&mut plain);
    fetch.handle_peer_data(now, PeerKey(4), &plain);

    let closes: Vec<(u64, FetchCloseReason)> = std::iter::from_fn(|| fetch.poll_output())
        .filter_map(|o| match o {
            FetchOutput::Close { peer, reason } => Some((peer.0, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), 4, "{closes:?}");
    assert_eq!(closes[0], (1, FetchCloseReason::WrongTorrent));
    assert_eq!(closes[1], (2, FetchCloseReason::Duplicate));
    assert!(matches!(closes[2], (3, FetchCloseReason::Protocol(_))));
    assert_eq!(closes[3], (4, FetchCloseReason::NoMetadata));
    assert_eq!(fetch.peer_count(), 0);
}

#[test]
fn a_dictionary_that_hashes_right_but_is_unusable_fails_the_fetch() {
    let now = Instant::now();
    // An empty dictionary: its own SHA-1 is its infohash, but it has no
    // name, piece length or pieces.
    let bytes = Bytes::from_static(b"de");
    let mut fetch = MetadataFetch::new(InfoHash::of(&bytes), FETCHER);
    connect_fake(now, &mut fetch, 1, 1, Some(2));
    let answer = crate::wire::metadata::metadata_piece(&bytes, 0);
    fetch.handle_peer_data(now, PeerKey(1), &metadata_message(&answer));
    let (_, said) = requests_to(&mut fetch, PeerKey(1));
    assert!(
        matches!(said[..], [FetchOutput::Failed(MetadataError::BadInfo(_))]),
        "{said:?}"
    );
    assert!(fetch.is_done());
}

#[test]
fn requests_from_peers_are_rejected() {
    let now = Instant::now();
    let info = two_piece_info();
    let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);
    connect_fake(now, &mut fetch, 1, 1, Some(info.encoded().len() as u64));
    let ask = metadata_message(&MetadataMessage::Request { piece: 0 });
    fetch.handle_peer_data(now, PeerKey(1), &ask);
    let Some(FetchOutput::Send { data, .. }) = fetch.poll_output() else {
        panic!("no answer");
    };
    let mut decoder = Decoder::new(DecoderLimits::new());
    decoder.extend(&data);
    let Ok(Some(Message::Extended { id: 5, payload })) = decoder.decode() else {
        panic!("not a ut_metadata message");
    };
    assert_eq!(
        MetadataMessage::decode(&payload),
        Ok(MetadataMessage::Reject { piece: 0 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever a second peer sends, split anywhere, the fetch never panics
    /// and still ends with the honest seeder's dictionary.
    #[test]
    fn garbage_from_one_peer_never_stops_the_fetch(
        garbage in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(0usize..400, 0..6),
        valid_handshake in any::<bool>(),
    ) {
        let now = Instant::now();
        let content = vec![1u8; 64 * 1024];
        let info = TorrentBuilder::new()
            .piece_length(16 * 1024)
            .build_from_reader("clip", content.as_slice())
            .unwrap()
            .info()
            .clone();
        let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);
        fetch.handle_peer_connected(now, PeerKey(1));
        let mut stream = if valid_handshake {
            fake_peer(info.info_hash(), peer_id(9), Some(info.encoded().len() as u64)).to_vec()
        } else {
            Vec::new()
        };
        stream.extend_from_slice(&garbage);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            fetch.handle_peer_data(now, PeerKey(1), &stream[from..cut]);
            from = cut;
        }
        let mut seeders = vec![seeder(now, &info, 0), seeder(now, &info, 0), seeder(now, &info, 2)];
        fetch.handle_peer_connected(now, PeerKey(2));
        seeders[2].handle_peer_connected(now, PeerKey(0));
        let mut said = pump(now, &mut fetch, &mut seeders);
        // The garbage peer may have been asked first and gone quiet.
        if !fetch.is_done() {
            fetch.handle_timeout(now + PIECE_TIMEOUT);
            said.extend(pump(now + PIECE_TIMEOUT, &mut fetch, &mut seeders));
        }
        prop_assert_eq!(done_info(&said), Some(&info));
    }
}
