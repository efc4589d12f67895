//! Serving the metadata within each connection's budget: a token bucket of
//! bytes, so a peer asking too much is rejected (BEP 9 `reject`), not
//! disconnected, earns its budget back with time, and costs other peers
//! nothing.

use super::extension::{extended, raw_peer};
use super::*;
use crate::swarm::metadata::{BURST_COPIES, LOCAL_METADATA_ID, METADATA_RATE};
use crate::wire::metadata::{METADATA_PIECE_LEN, MetadataAssembler, MetadataMessage};
use crate::wire::{Decoder, DecoderLimits};

/// The id the test peers want `ut_metadata` answers sent with.
const THEIR_ID: u8 = 3;

/// A seeder of a torrent whose info dictionary is two metadata pieces, and
/// two peers opened from a magnet link, handshakes done.
fn seeder_and_two_peers() -> (Net, usize, Info) {
    let (mut net, info) = Net::new(1_200 * 16_384, 16_384);
    let seeder = net.add(&info, true, false, no_http());
    let now = net.now;
    let swarm = &mut net.nodes[seeder].swarm;
    for (key, id) in [(7, b"-WW0208-greedygreedy"), (8, b"-WW0208-honesthonest")] {
        raw_peer(
            swarm,
            now,
            PeerKey(key),
            id,
            &extended(0, b"d1:md11:ut_metadatai3eee"),
        );
    }
    // Their handshakes' answers are of no interest here.
    while swarm.poll_output().is_some() {}
    (net, seeder, info)
}

/// `peer` asks for metadata `piece`; returns the answers it got.
fn ask(swarm: &mut Swarm, now: Instant, peer: PeerKey, piece: u32) -> Vec<MetadataMessage> {
    let request = MetadataMessage::Request { piece }.encode();
    swarm.handle_peer_data(now, peer, &extended(LOCAL_METADATA_ID, &request));
    let mut decoder = Decoder::new(DecoderLimits::new().with_piece_count(100_000));
    for output in std::iter::from_fn(|| swarm.poll_output()) {
        match output {
            Output::Send { peer: to, data } if to == peer => decoder.extend(&data),
            Output::Close { peer, reason } => panic!("{peer:?} closed: {reason:?}"),
            _ => {}
        }
    }
    let mut answers = Vec::new();
    while let Some(message) = decoder.decode().unwrap() {
        if let Message::Extended { id, payload } = message {
            assert_eq!(id, THEIR_ID, "answered on the id it asked for");
            answers.push(MetadataMessage::decode(&payload).unwrap());
        }
    }
    answers
}

fn is_data(answers: &[MetadataMessage]) -> bool {
    match answers {
        [MetadataMessage::Data { .. }] => true,
        [MetadataMessage::Reject { piece: 0 }] => false,
        other => panic!("one data or reject of piece 0 expected: {other:?}"),
    }
}

#[test]
fn a_peer_asking_too_much_is_rejected_then_served_again_at_the_rate() {
    let (mut net, seeder, info) = seeder_and_two_peers();
    let now = net.now;
    let swarm = &mut net.nodes[seeder].swarm;
    let greedy = PeerKey(7);
    let size = info.encoded().len() as u64;
    assert!(size > METADATA_PIECE_LEN as u64, "two metadata pieces");

    // Piece 0 again and again, at once: data while the burst lasts, then
    // rejects, and the connection stays open.
    let served: Vec<bool> = (0..20)
        .map(|_| is_data(&ask(swarm, now, greedy, 0)))
        .collect();
    let burst = (BURST_COPIES * size / METADATA_PIECE_LEN as u64) as usize;
    let mut expected = vec![true; burst];
    expected.resize(20, false);
    assert_eq!(served, expected);

    // An honest peer is served all the same: the budget is per connection.
    let honest = PeerKey(8);
    let mut assembler = MetadataAssembler::new(info.info_hash(), size).unwrap();
    for piece in [0, 1] {
        match ask(swarm, now, honest, piece).as_slice() {
            [
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                },
            ] => assembler.add(*piece, *total_size, data).unwrap(),
            other => panic!("piece {piece}: {other:?}"),
        }
    }
    assert_eq!(assembler.finish().unwrap(), info);

    // The greedy peer earns a piece back at the rate, and no more.
    let piece = METADATA_PIECE_LEN as u64;
    let left = BURST_COPIES * size - burst as u64 * piece;
    let earn = Duration::from_secs_f64((piece - left) as f64 / METADATA_RATE as f64);
    let later = now + earn.mul_f64(0.9);
    assert!(!is_data(&ask(swarm, later, greedy, 0)), "not yet earned");
    let later = now + earn + Duration::from_millis(1);
    assert!(is_data(&ask(swarm, later, greedy, 0)), "earned back");
    assert!(!is_data(&ask(swarm, later, greedy, 0)), "only one");
    assert!(swarm.peers(later).len() >= 2, "nobody was disconnected");
}
