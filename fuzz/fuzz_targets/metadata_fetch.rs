//! A metadata fetch fed arbitrary bytes by one peer, split at arbitrary
//! points, with time passing between chunks: it closes the connection,
//! asks, or ignores the input, never panics, and never hands over an info
//! dictionary whose SHA-1 is not the infohash.
//!
//! Input layout: byte 0 picks the side (bit 0: the peer's valid handshake
//! and extension handshake come first, offering `metadata_size` from byte
//! 1); bytes 1..=4 are chunk sizes, used in turn; the rest is the peer's
//! stream.
#![no_main]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use chunkswarm_core::metadata_fetch::{FetchOutput, MetadataFetch};
use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::swarm::PeerKey;
use chunkswarm_core::wire::extension::{EXTENSION_HANDSHAKE_ID, ExtensionHandshake};
use chunkswarm_core::wire::metadata::METADATA_EXTENSION;
use chunkswarm_core::wire::{Handshake, Message, Reserved};
use libfuzzer_sys::fuzz_target;
use web_time::Instant;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let (header, rest) = data.split_at(5);
    // A dictionary the peer's stream could in principle reproduce: `de`.
    let info_hash = InfoHash::of(b"de");
    let mut fetch = MetadataFetch::new(info_hash, *b"-CS0001-fuzzfetcher1");
    let mut now = Instant::now();
    let peer = PeerKey(1);
    fetch.handle_peer_connected(now, peer);
    let mut stream = BytesMut::new();
    if header[0] & 1 == 1 {
        Handshake {
            reserved: Reserved::NONE.with_fast(true).with_extended(true),
            info_hash: *info_hash.as_bytes(),
            peer_id: *b"-XX0001-fuzzpeer0001",
        }
        .encode(&mut stream);
        let offer = ExtensionHandshake {
            extensions: BTreeMap::from([(METADATA_EXTENSION.to_owned(), 3)]),
            metadata_size: Some(u64::from(header[1])),
            ..ExtensionHandshake::default()
        };
        Message::Extended {
            id: EXTENSION_HANDSHAKE_ID,
            payload: offer.encode(),
        }
        .encode(&mut stream);
    }
    stream.extend_from_slice(rest);
    let mut stream = &stream[..];
    let mut turn = 1;
    while !stream.is_empty() {
        let size = usize::from(header[turn]).max(1).min(stream.len());
        turn = turn % 4 + 1;
        let (chunk, tail) = stream.split_at(size);
        stream = tail;
        fetch.handle_peer_data(now, peer, chunk);
        now += Duration::from_millis(u64::from(header[turn]) * 50);
        fetch.handle_timeout(now);
        while let Some(output) = fetch.poll_output() {
            if let FetchOutput::Done(info) = output {
                assert_eq!(info.info_hash(), info_hash);
            }
        }
    }
});
