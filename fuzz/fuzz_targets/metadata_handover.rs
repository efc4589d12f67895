//! A metadata fetch that hands its connection over to a download in the
//! middle of a peer's arbitrary stream: the fetch reads the stream up to a
//! cut, [`MetadataFetch::into_handover`] passes the connection on, and the
//! download ([`Swarm::admit_peer`]) reads the rest. Neither panics, and
//! every output names the one connection there is.
//!
//! Input layout: byte 0 picks the peer's handshake (bit 0: the fast bit,
//! bit 1: the extension bit, bit 2: an extension handshake offering
//! `ut_metadata` follows it); byte 1 is the cut, as a share of the
//! stream; the rest follows the peer's handshake.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::BytesMut;
use chunkswarm_core::metadata_fetch::{FetchOutput, MetadataFetch};
use chunkswarm_core::metainfo::{Info, TorrentBuilder};
use chunkswarm_core::piece_map::Bitfield;
use chunkswarm_core::swarm::{Output, PeerKey, Swarm, SwarmConfig};
use chunkswarm_core::wire::extension::{EXTENSION_HANDSHAKE_ID, ExtensionHandshake};
use chunkswarm_core::wire::metadata::METADATA_EXTENSION;
use chunkswarm_core::wire::{Handshake, Message, Reserved};
use libfuzzer_sys::fuzz_target;
use web_time::Instant;

const FETCHER: [u8; 20] = *b"-CS0001-fuzzfetcher1";
const PEER: PeerKey = PeerKey(1);

/// A torrent of 12 pieces of 16 KiB, made once.
fn info() -> &'static Info {
    static INFO: OnceLock<Info> = OnceLock::new();
    INFO.get_or_init(|| {
        let content = vec![5u8; 12 * 16 * 1024];
        TorrentBuilder::new()
            .piece_length(16 * 1024)
            .build_from_reader("fuzz.bin", content.as_slice())
            .expect("a torrent of fixed content")
            .info()
            .clone()
    })
}

fuzz_target!(|data: &[u8]| {
    let [flags, cut, rest @ ..] = data else {
        return;
    };
    let info = info();
    let mut stream = BytesMut::new();
    Handshake {
        reserved: Reserved::NONE
            .with_fast(flags & 1 != 0)
            .with_extended(flags & 2 != 0),
        info_hash: *info.info_hash().as_bytes(),
        peer_id: *b"-XX0001-fuzzpeer0001",
    }
    .encode(&mut stream);
    if flags & 4 != 0 {
        let offer = ExtensionHandshake {
            extensions: BTreeMap::from([(METADATA_EXTENSION.to_owned(), 3)]),
            metadata_size: Some(info.encoded().len() as u64),
            ..ExtensionHandshake::default()
        };
        Message::Extended {
            id: EXTENSION_HANDSHAKE_ID,
            payload: offer.encode(),
        }
        .encode(&mut stream);
    }
    stream.extend_from_slice(rest);
    let cut = stream.len() * usize::from(*cut) / 255;
    let now = Instant::now();

    let mut fetch = MetadataFetch::new(info.info_hash(), FETCHER);
    fetch.handle_peer_connected(now, PEER);
    fetch.handle_peer_data(now, PEER, &stream[..cut]);
    while let Some(output) = fetch.poll_output() {
        match output {
            FetchOutput::Send { peer, .. } | FetchOutput::Close { peer, .. } => {
                assert_eq!(peer, PEER);
            }
            FetchOutput::Done(_) | FetchOutput::Failed(_) => panic!("no metadata was given"),
            FetchOutput::BadMetadata { .. } => {}
        }
    }

    let pieces = info.layout().piece_count();
    let config = SwarmConfig {
        peer_id: FETCHER,
        ..SwarmConfig::default()
    };
    let mut swarm = Swarm::new(now, info.clone(), Bitfield::new(pieces), config);
    for (peer, handover) in fetch.into_handover() {
        assert_eq!(peer, PEER);
        swarm.admit_peer(now, peer, handover);
    }
    swarm.handle_peer_data(now, PEER, &stream[cut..]);
    swarm.handle_timeout(now);
    while let Some(output) = swarm.poll_output() {
        if let Output::Send { peer, .. } | Output::Close { peer, .. } = output {
            assert_eq!(peer, PEER);
        }
    }
});
