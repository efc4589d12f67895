//! A swarm fed arbitrary bytes by one peer after a valid handshake, split at
//! arbitrary points, with time passing between chunks: it answers, closes
//! the connection or ignores the input, never panics, and never stores or
//! serves a piece that fails its hash.
//!
//! Input layout: byte 0 picks the side (bit 0: we seed, bit 1: the peer's
//! handshake sets the extension bits); bytes 1..=4 are chunk sizes, used in
//! turn; the rest is the peer's stream after its handshake.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chunkswarm_core::metainfo::{Info, TorrentBuilder};
use chunkswarm_core::piece_map::Bitfield;
use chunkswarm_core::swarm::{Output, PeerKey, Swarm, SwarmConfig};
use chunkswarm_core::wire::{Handshake, Reserved};
use libfuzzer_sys::fuzz_target;
use web_time::Instant;

const PIECE: u32 = 16 * 1024;

fn torrent() -> &'static (Info, Vec<u8>) {
    static TORRENT: OnceLock<(Info, Vec<u8>)> = OnceLock::new();
    TORRENT.get_or_init(|| {
        let content: Vec<u8> = (0..4 * PIECE as usize + 5_000)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let meta = TorrentBuilder::new()
            .piece_length(PIECE)
            .build_from_reader("fuzz.bin", content.as_slice())
            .expect("a valid torrent");
        (meta.info().clone(), content)
    })
}

fn drain(swarm: &mut Swarm, now: Instant, info: &Info, content: &[u8]) {
    while let Some(output) = swarm.poll_output() {
        match output {
            Output::ReadPiece { piece } => {
                let range = info.layout().piece_range(piece);
                let data =
                    Bytes::copy_from_slice(&content[range.start as usize..range.end as usize]);
                swarm.handle_piece_read(now, piece, Some(data));
            }
            Output::StorePiece { piece, data } => {
                let range = info.layout().piece_range(piece);
                assert_eq!(
                    &data[..],
                    &content[range.start as usize..range.end as usize]
                );
            }
            Output::HttpFetch { id, range } => {
                let body =
                    Bytes::copy_from_slice(&content[range.start as usize..range.end as usize]);
                swarm.handle_http_response(now, id, Ok(body));
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at(rest.len().min(4));
    let (info, content) = torrent();
    let pieces = info.layout().piece_count();
    let have = if mode & 1 == 1 {
        Bitfield::full(pieces)
    } else {
        Bitfield::new(pieces)
    };
    let mut now = Instant::now();
    let mut swarm = Swarm::new(now, info.clone(), have, SwarmConfig::default());
    let peer = PeerKey(1);
    swarm.handle_peer_connected(now, peer);
    let reserved = if mode & 2 == 2 {
        Reserved::NONE.with_fast(true).with_extended(true)
    } else {
        Reserved::NONE
    };
    let mut hello = BytesMut::new();
    Handshake {
        reserved,
        info_hash: *info.info_hash().as_bytes(),
        peer_id: *b"-FZ0001-fuzzfuzzfuzz",
    }
    .encode(&mut hello);
    swarm.handle_peer_data(now, peer, &hello);
    drain(&mut swarm, now, info, content);
    let mut offset = 0;
    let mut turn = 0;
    while offset < stream.len() {
        let size = sizes
            .get(turn % sizes.len().max(1))
            .map_or(stream.len(), |s| usize::from(*s).max(1));
        let end = (offset + size).min(stream.len());
        swarm.handle_peer_data(now, peer, &stream[offset..end]);
        drain(&mut swarm, now, info, content);
        now += Duration::from_millis(u64::from(sizes.get(turn % 4).copied().unwrap_or(0)) * 20);
        swarm.handle_timeout(now);
        drain(&mut swarm, now, info, content);
        offset = end;
        turn += 1;
    }
    if swarm.is_complete() {
        assert!(swarm.have().is_full());
    }
});
