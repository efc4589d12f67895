//! The handover as a property: a connection handed from the fetch to the
//! download at any byte of the peer's stream leaves the download where
//! reading the whole stream itself would have.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use web_time::Instant;

use super::handover_tests::{FETCHER, OTHER, config, torrent};
use super::*;
use crate::piece_map::Bitfield;
use crate::swarm::Swarm;

/// Messages a peer may send while the metadata is fetched, bad ones
/// included (a bitfield of the wrong length, a `have` out of range, a
/// second bitfield).
fn peer_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..5)
            .prop_map(|bytes| Message::Bitfield(Bytes::from(bytes))),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        (0u32..30).prop_map(|piece| Message::Have { piece }),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::KeepAlive),
    ]
}

/// What the download knows of a connection, rates and counters aside.
fn seen(swarm: &Swarm, now: Instant, peer: PeerKey) -> Option<(u32, bool, bool, bool, bool)> {
    let snapshot = swarm.peers(now).into_iter().find(|p| p.peer == peer)?;
    Some((
        snapshot.pieces,
        snapshot.is_seed,
        snapshot.am_interested,
        snapshot.peer_choking,
        snapshot.peer_interested,
    ))
}

proptest! {
    /// Handing a connection over at any byte leaves the download where it
    /// would be had it read the whole stream itself: the same peer kept
    /// or closed, with the same pieces, choking and interest.
    #[test]
    fn a_handover_at_any_byte_is_as_if_the_download_had_read_it_all(
        fast in any::<bool>(),
        said in proptest::collection::vec(peer_message(), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (info, _) = torrent();
        let pieces = info.layout().piece_count();
        let now = Instant::now();
        let mut stream = BytesMut::new();
        Handshake {
            reserved: Reserved::NONE.with_fast(fast).with_extended(true),
            info_hash: *info.info_hash().as_bytes(),
            peer_id: OTHER,
        }
        .encode(&mut stream);
        let offer = ExtensionHandshake {
            extensions: BTreeMap::from([(METADATA_EXTENSION.to_owned(), 5)]),
            metadata_size: Some(info.encoded().len() as u64),
            ..ExtensionHandshake::default()
        };
        Message::Extended { id: EXTENSION_HANDSHAKE_ID, payload: offer.encode() }
            .encode(&mut stream);
        // Cut anywhere from inside the handshake on, mostly among the messages.
        let first_cut = 40;
        for message in &said {
            message.encode(&mut stream);
        }
        let cut = first_cut + cut.index(stream.len() - first_cut + 1);
        let key = PeerKey(1);

        let mut direct = Swarm::new(now, info.clone(), Bitfield::new(pieces), config(FETCHER));
        direct.handle_peer_connected(now, key);
        direct.handle_peer_data(now, key, &stream);

        let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);
        fetch.handle_peer_connected(now, key);
        fetch.handle_peer_data(now, key, &stream[..cut]);
        let mut handed = Swarm::new(now, info.clone(), Bitfield::new(pieces), config(FETCHER));
        for (peer, handover) in fetch.into_handover() {
            handed.admit_peer(now, peer, handover);
        }
        handed.handle_peer_data(now, key, &stream[cut..]);
        prop_assert_eq!(seen(&handed, now, key), seen(&direct, now, key));
    }
}
