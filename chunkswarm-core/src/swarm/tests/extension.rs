//! BEP 10 extension messages: the handshake's place on the wire; origin
//! claims, which decide who fetches an unheld piece from the origin when
//! peers that are not connected to each other share a neighbour; and
//! playheads, which decide whom an uploader serves first.

use super::*;
use crate::wire::BlockRequest;
use crate::wire::extension::{OriginClaim, Playhead};

/// No wait before unheld pieces go to HTTP, and no ownership among
/// neighbours: every node wants to fetch piece 0 at its first tick.
fn eager(claim_ttl: Duration) -> SwarmConfig {
    SwarmConfig {
        http: HttpConfig {
            patience: Duration::ZERO,
            starving_fallback: Duration::ZERO,
            claim_ttl,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    }
}

/// Nodes connected in a line, handshakes done, with HTTP fetches held.
fn line(nodes: usize, config: &SwarmConfig) -> Net {
    let (mut net, info) = Net::new(16_384, 16_384);
    net.held_http = Some(Vec::new());
    for _ in 0..nodes {
        net.add(&info, false, false, config.clone());
    }
    for i in 1..nodes {
        net.connect(i - 1, i);
    }
    settle(&mut net);
    net
}

fn settle(net: &mut Net) {
    while !net.queue.is_empty() {
        net.deliver_all();
    }
}

/// Runs one node's periodic work and reports whether it asked the origin
/// for anything.
fn tick_fetches(net: &mut Net, i: usize) -> bool {
    let before = net.held_http.as_ref().map_or(0, Vec::len);
    net.now += Duration::from_millis(300);
    let now = net.now;
    net.nodes[i].swarm.handle_timeout(now);
    net.drain(i);
    let after = net.held_http.as_ref().map_or(0, Vec::len);
    after > before
}

/// Connects a hand-driven peer `key` to `swarm` and feeds it this peer's
/// handshake (fast and extension bits set), with `then` right behind it.
pub(super) fn raw_peer(
    swarm: &mut Swarm,
    now: Instant,
    key: PeerKey,
    peer_id: &[u8; 20],
    then: &[u8],
) {
    swarm.handle_peer_connected(now, key);
    let mut wire = BytesMut::new();
    Handshake {
        reserved: Reserved::NONE.with_fast(true).with_extended(true),
        info_hash: *swarm.info().info_hash().as_bytes(),
        peer_id: *peer_id,
    }
    .encode(&mut wire);
    wire.extend_from_slice(then);
    swarm.handle_peer_data(now, key, &wire);
}

pub(super) fn extended(id: u8, payload: &[u8]) -> Bytes {
    let mut data = BytesMut::new();
    Message::Extended {
        id,
        payload: Bytes::copy_from_slice(payload),
    }
    .encode(&mut data);
    data.freeze()
}

#[test]
fn a_claim_reaches_two_hops_and_no_further() {
    let mut net = line(4, &eager(Duration::from_secs(30)));
    assert!(tick_fetches(&mut net, 0), "the first node fetches piece 0");
    settle(&mut net);
    assert!(!tick_fetches(&mut net, 1), "its neighbour heard the claim");
    assert!(!tick_fetches(&mut net, 2), "the neighbour's neighbour too");
    assert!(tick_fetches(&mut net, 3), "three hops away it is not heard");
}

#[test]
fn without_claims_every_node_pays_the_origin() {
    let mut net = line(3, &eager(Duration::ZERO));
    for i in 0..3 {
        assert!(tick_fetches(&mut net, i), "node {i}");
        settle(&mut net);
    }
}

#[test]
fn a_newcomer_hears_the_claims_in_force() {
    let mut net = line(2, &eager(Duration::from_secs(30)));
    assert!(tick_fetches(&mut net, 0));
    settle(&mut net);
    let info = net.nodes[0].swarm.info().clone();
    let late = net.add(&info, false, false, eager(Duration::from_secs(30)));
    net.connect(1, late);
    settle(&mut net);
    assert!(
        !tick_fetches(&mut net, late),
        "told by node 1 on connecting"
    );
}

#[test]
fn a_claim_holds_a_piece_back_only_once_for_its_ttl() {
    let ttl = Duration::from_secs(5);
    let mut net = line(1, &eager(ttl));
    let start = net.now;
    let now = net.now;
    let swarm = &mut net.nodes[0].swarm;
    let liar = PeerKey(7);
    let claim = OriginClaim { piece: 0, hops: 0 }.encode();
    raw_peer(
        swarm,
        now,
        liar,
        b"-XX0001-liarliarliar",
        &extended(1, &claim),
    );
    assert!(!tick_fetches(&mut net, 0), "claimed");
    // Claiming again and again does not keep the piece away from the origin.
    let mut fetched = false;
    for _ in 0..30 {
        let now = net.now;
        let swarm = &mut net.nodes[0].swarm;
        swarm.handle_peer_data(now, liar, &extended(1, &claim));
        if tick_fetches(&mut net, 0) {
            fetched = true;
            break;
        }
    }
    assert!(fetched, "fetched once the claim expired");
    assert!(net.now.duration_since(start) >= ttl);
}

/// A streaming viewer (not yet playing) of 16 pieces of 64 KiB holding the
/// first `held`, whose unheld-piece fetches wait `patience`; and the net
/// whose content and clock it was made with.
fn streaming_viewer(held: u32, patience: Duration) -> (Swarm, Net) {
    let (net, info) = Net::new(16 * 65_536, 65_536);
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        http: HttpConfig {
            patience,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    };
    let mut have = Bitfield::new(16);
    for piece in (0..held).filter_map(|i| info.layout().piece(i)) {
        have.insert(piece);
    }
    (Swarm::new(net.now, info, have, config), net)
}

/// A viewer of 16 pieces of a second each, holding the first `held`,
/// paused at the start (so every deadline stays put), whose only neighbour
/// holds nothing and claims all the rest from the origin: at `hops` 1 as
/// their fetcher, at 0 passing on another peer's claims.
fn viewer_behind_a_claimant(held: u32, hops: u8) -> (Swarm, Instant) {
    // Only rescues go to the origin here.
    let (mut viewer, net) = streaming_viewer(held, Duration::from_secs(3600));
    let now = net.now;
    let claims: Vec<u8> = (held..16)
        .flat_map(|piece| extended(1, &OriginClaim { piece, hops }.encode()).to_vec())
        .collect();
    raw_peer(
        &mut viewer,
        now,
        PeerKey(7),
        b"-XX0001-claimclaimcl",
        &claims,
    );
    let playback = Playback {
        position: 0,
        bitrate: 65_536,
    };
    viewer.set_playback(now, Some(playback));
    (viewer, now)
}

/// The pieces the viewer asked the origin for since last asked.
fn origin_pieces(viewer: &mut Swarm) -> Vec<u64> {
    std::iter::from_fn(|| viewer.poll_output())
        .filter_map(|o| match o {
            Output::HttpFetch { range, .. } => Some(range.start / 65_536),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rescue_waits_for_a_fresh_claimant_while_a_whole_lead_would_remain() {
    // Piece 8 is due in 8 s; a rescue takes 3 s (1.5 s for an unmeasured
    // origin plus the margin), and so would the claimant's fetch.
    let (mut viewer, start) = viewer_behind_a_claimant(8, 1);
    let lead = viewer.rescue_lead(65_536);
    assert!((lead - 3.0).abs() < 1e-9, "{lead}");
    assert_eq!(origin_pieces(&mut viewer), Vec::<u64>::new());
    viewer.handle_timeout(start + Duration::from_secs(2));
    assert_eq!(origin_pieces(&mut viewer), Vec::<u64>::new(), "still fresh");
    // The claimant should have had it by now and nobody holds it: peers
    // measured at nothing will not bring it, so it is rescued.
    viewer.handle_timeout(start + Duration::from_millis(3100));
    assert_eq!(origin_pieces(&mut viewer), vec![8]);
}

#[test]
fn a_claim_does_not_hold_back_a_rescue_due_within_the_wait_and_a_lead() {
    // Piece 4 is due in 4 s, under the 3 s wait plus the 3 s lead.
    let (mut viewer, _) = viewer_behind_a_claimant(4, 1);
    assert_eq!(origin_pieces(&mut viewer), vec![4]);
}

#[test]
fn a_rescue_does_not_wait_for_a_claimant_that_is_not_a_neighbour() {
    // The claim was passed on: its fetcher will not tell us it holds the piece.
    let (mut viewer, _) = viewer_behind_a_claimant(8, 0);
    assert_eq!(origin_pieces(&mut viewer), vec![8]);
}

#[test]
fn malformed_extension_messages_close_the_connection() {
    type Expected = fn(&ProtocolViolation) -> bool;
    let claim_out_of_range: Expected = |v| *v == ProtocolViolation::ClaimOutOfRange { piece: 1 };
    let malformed: Expected = |v| matches!(v, ProtocolViolation::Extension(_));
    let cases: [(u8, &[u8], Expected); 5] = [
        (1, b"d4:hopsi0e5:piecei1ee", claim_out_of_range),
        (1, b"d4:hopsi0ee", malformed), // no piece
        (3, b"d3:posi0ee", malformed),  // a playhead without its rate
        (
            1,
            b"llllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
            malformed,
        ),
        (0, b"i42e", malformed), // a handshake that is not a dictionary
    ];
    for (id, payload, expected) in cases {
        let mut net = line(1, &eager(Duration::from_secs(30)));
        let now = net.now;
        let swarm = &mut net.nodes[0].swarm;
        let message = extended(id, payload);
        raw_peer(swarm, now, PeerKey(7), b"-XX0001-badbadbadbad", &message);
        let outputs: Vec<Output> = std::iter::from_fn(|| swarm.poll_output()).collect();
        assert!(
            outputs.iter().any(|o| matches!(
                o,
                Output::Close {
                    peer: PeerKey(7),
                    reason: CloseReason::Protocol(v)
                } if expected(v)
            )),
            "{payload:?}: {outputs:?}"
        );
    }
}

#[test]
fn claims_in_force_go_to_a_peer_once_however_often_it_shakes_hands() {
    let mut net = line(1, &eager(Duration::from_secs(30)));
    assert!(
        tick_fetches(&mut net, 0),
        "node 0 fetches piece 0: a claim in force"
    );
    let now = net.now;
    let swarm = &mut net.nodes[0].swarm;
    raw_peer(swarm, now, PeerKey(7), b"-XX0001-chattychatty", &[]);
    std::iter::from_fn(|| swarm.poll_output()).for_each(drop);
    let offer = b"d1:md9:cs_origini3eee";
    let mut sent = Vec::new();
    for _ in 0..3 {
        swarm.handle_peer_data(now, PeerKey(7), &extended(0, offer));
        let outputs: Vec<Output> = std::iter::from_fn(|| swarm.poll_output()).collect();
        sent.push(
            outputs
                .iter()
                .filter(|o| {
                    matches!(
                        o,
                        Output::Send {
                            peer: PeerKey(7),
                            ..
                        }
                    )
                })
                .count(),
        );
    }
    assert_eq!(sent, [1, 0, 0]);
}

#[test]
fn an_extension_handshake_may_come_before_the_bitfield() {
    // WebTorrent's order: handshake, extension handshake, then have all.
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    let leecher = net.add(&info, false, false, no_http());
    let now = net.now;
    let swarm = &mut net.nodes[leecher].swarm;
    let mut wire = BytesMut::new();
    Message::Extended {
        id: 0,
        payload: Bytes::from_static(b"d1:md11:lt_donthavei7eee"),
    }
    .encode(&mut wire);
    Message::HaveAll.encode(&mut wire);
    raw_peer(swarm, now, PeerKey(7), b"-WW0208-webtorrent00", &wire);
    let outputs: Vec<Output> = std::iter::from_fn(|| swarm.poll_output()).collect();
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Close { .. })),
        "{outputs:?}"
    );
    let peer = swarm.peers(now).into_iter().find(|p| p.peer == PeerKey(7));
    assert!(peer.is_some_and(|p| p.is_seed && p.am_interested));
}

#[test]
fn a_peer_opened_from_a_magnet_may_send_its_bitfield_late_but_only_first() {
    // WebTorrent with a magnet link: extension handshake, a metadata
    // request, `interested`, and only then `have none`.
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    let seeder = net.add(&info, true, false, no_http());
    let now = net.now;
    let swarm = &mut net.nodes[seeder].swarm;
    let mut wire = BytesMut::new();
    for message in [
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"d1:md11:ut_metadatai3eee"),
        },
        Message::Extended {
            id: 2,
            payload: Bytes::from_static(b"d8:msg_typei0e5:piecei0ee"),
        },
        Message::Interested,
        Message::HaveNone,
        Message::Have { piece: 1 },
    ] {
        message.encode(&mut wire);
    }
    raw_peer(swarm, now, PeerKey(7), b"-WW0208-magnetmagnet", &wire);
    let outputs: Vec<Output> = std::iter::from_fn(|| swarm.poll_output()).collect();
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Close { .. })),
        "{outputs:?}"
    );
    // A second availability message is still a violation.
    let mut late = BytesMut::new();
    Message::HaveAll.encode(&mut late);
    swarm.handle_peer_data(now, PeerKey(7), &late);
    let outputs: Vec<Output> = std::iter::from_fn(|| swarm.poll_output()).collect();
    assert!(
        outputs.iter().any(|o| matches!(
            o,
            Output::Close {
                peer: PeerKey(7),
                ..
            }
        )),
        "{outputs:?}"
    );
}

/// The `extended` messages `swarm` sent to `peer`; `first` when the bytes
/// begin with its handshake.
fn extended_sent(swarm: &mut Swarm, peer: PeerKey, first: bool) -> Vec<(u8, Bytes)> {
    use crate::wire::{Decoder, DecoderLimits, HandshakeDecoder};
    let limits = DecoderLimits::new().with_piece_count(100_000);
    let mut bytes = BytesMut::new();
    for output in std::iter::from_fn(|| swarm.poll_output()) {
        if let Output::Send { peer: to, data } = output {
            if to == peer {
                bytes.extend_from_slice(&data);
            }
        }
    }
    let mut decoder = if first {
        let mut handshaking = HandshakeDecoder::new(limits);
        handshaking.extend(&bytes);
        handshaking.decode().unwrap().unwrap().1
    } else {
        let mut decoder = Decoder::new(limits);
        decoder.extend(&bytes);
        decoder
    };
    let mut out = Vec::new();
    while let Ok(Some(message)) = decoder.decode() {
        if let Message::Extended { id, payload } = message {
            out.push((id, payload));
        }
    }
    out
}

#[test]
fn the_metadata_goes_to_peers_that_ask_within_limits() {
    use crate::wire::extension::ExtensionHandshake;
    use crate::wire::metadata::{METADATA_EXTENSION, MetadataAssembler, MetadataMessage};

    // An info dictionary of two metadata pieces.
    let (mut net, info) = Net::new(1_200 * 16_384, 16_384);
    let seeder = net.add(&info, true, false, no_http());
    let now = net.now;
    let swarm = &mut net.nodes[seeder].swarm;
    // A WebTorrent client opened from a magnet: handshake, then its
    // extension handshake asking for `ut_metadata` answers on id 3.
    raw_peer(
        swarm,
        now,
        PeerKey(7),
        b"-WW0208-magnetmagnet",
        &extended(0, b"d1:md11:ut_metadatai3eee"),
    );
    let ours = extended_sent(swarm, PeerKey(7), true);
    let (_, handshake) = ours.iter().find(|(id, _)| *id == 0).unwrap();
    let handshake = ExtensionHandshake::decode(handshake).unwrap();
    let size = handshake.metadata_size.unwrap();
    assert_eq!(size, info.encoded().len() as u64);
    let their_id = handshake.id_of(METADATA_EXTENSION).unwrap();

    let mut assembler = MetadataAssembler::new(info.info_hash(), size).unwrap();
    let missing: Vec<u32> = assembler.missing().collect();
    assert_eq!(missing, [0, 1]);
    for piece in missing.into_iter().chain([9]) {
        let request = MetadataMessage::Request { piece }.encode();
        swarm.handle_peer_data(now, PeerKey(7), &extended(their_id, &request));
        let replies = extended_sent(swarm, PeerKey(7), false);
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!(replies[0].0, 3, "answered on the id it asked for");
        match MetadataMessage::decode(&replies[0].1).unwrap() {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => assembler.add(piece, total_size, &data).unwrap(),
            MetadataMessage::Reject { piece } => assert_eq!(piece, 9),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(assembler.finish().unwrap(), info);

    // Asking on and on at once: rejected once three copies' bytes went out
    // (the whole copy above and two more of piece 0; a third would pass
    // them). Rates and refills: `metadata_budget.rs`.
    let request = MetadataMessage::Request { piece: 0 }.encode();
    let mut kinds = Vec::new();
    for _ in 0..6 {
        swarm.handle_peer_data(now, PeerKey(7), &extended(their_id, &request));
        for (_, payload) in extended_sent(swarm, PeerKey(7), false) {
            kinds.push(matches!(
                MetadataMessage::decode(&payload).unwrap(),
                MetadataMessage::Data { .. }
            ));
        }
    }
    assert_eq!(kinds, [true, true, false, false, false, false]);

    // A malformed metadata message closes the connection.
    swarm.handle_peer_data(now, PeerKey(7), &extended(their_id, b"d8:msg_typei9ee"));
    let outputs: Vec<Output> = std::iter::from_fn(|| swarm.poll_output()).collect();
    assert!(
        outputs.iter().any(|o| matches!(
            o,
            Output::Close {
                peer: PeerKey(7),
                reason: CloseReason::Protocol(ProtocolViolation::Extension(_))
            }
        )),
        "{outputs:?}"
    );
}

/// A hand-driven neighbour asking a seeder for all four blocks of piece 1,
/// with the playhead it reports (none: it does not play).
struct Asker {
    key: PeerKey,
    id: &'static [u8; 20],
    playhead: Option<Playhead>,
}

/// A seeder of two 64 KiB pieces, playing if `plays` (with `streams`
/// upload streams, and `limit` bytes per second of upload), asked for all
/// of piece 1 by `askers`; `full`'s channel is full throughout, the
/// others' channels drain after every pass. Returns whom each block went
/// to, in sending order.
fn blocks_served(
    askers: &[Asker],
    plays: bool,
    (streams, limit): (usize, Option<u64>),
    full: Option<PeerKey>,
) -> Vec<PeerKey> {
    let piece = 4 * 16_384;
    let (mut net, info) = Net::new(2 * piece, piece as u32);
    let mut config = SwarmConfig::default();
    config.streaming.upload_streams = streams;
    config.upload_rate_limit = limit;
    let seeder = net.add(&info, true, false, config);
    let now = net.now;
    if plays {
        let playback = Playback {
            position: 0,
            bitrate: 1_000,
        };
        net.nodes[seeder].swarm.set_playback(now, Some(playback));
    }
    for asker in askers {
        let mut wire = BytesMut::from(&extended(0, b"d1:md11:cs_playheadi5eee")[..]);
        if let Some(playhead) = asker.playhead {
            wire.extend_from_slice(&extended(3, &playhead.encode()));
        }
        Message::Interested.encode(&mut wire);
        for block in 0..4 {
            let request = BlockRequest {
                index: 1,
                begin: block * 16_384,
                length: 16_384,
            };
            Message::Request(request).encode(&mut wire);
        }
        raw_peer(
            &mut net.nodes[seeder].swarm,
            now,
            asker.key,
            asker.id,
            &wire,
        );
    }
    let node = &mut net.nodes[seeder];
    if let Some(key) = full {
        node.swarm.handle_peer_writable(now, key, false);
    }
    let mut served = Vec::new();
    for _ in 0..4 {
        let outputs: Vec<Output> = std::iter::from_fn(|| node.swarm.poll_output()).collect();
        for output in outputs {
            match output {
                Output::ReadPiece { piece } => {
                    let data = node.store.get(&piece.get()).cloned();
                    node.swarm.handle_piece_read(now, piece, data);
                }
                Output::Send { peer, data } if data.len() > 16_384 => served.push(peer),
                _ => {}
            }
        }
        for asker in askers.iter().filter(|a| Some(a.key) != full) {
            node.swarm.handle_peer_writable(now, asker.key, true);
        }
    }
    served
}

/// Two viewers of piece 1 (64 KiB in): `calm` (key 7) plays it in a
/// minute, `urgent` (key 8) in a second.
fn calm_and_urgent() -> [Asker; 2] {
    let piece = 4 * 16_384;
    let player = |key, id, bitrate| Asker {
        key: PeerKey(key),
        id,
        playhead: Some(Playhead {
            position: 0,
            bitrate,
        }),
    };
    [
        player(7, b"-XX0001-calmcalmcalm", piece / 60),
        player(8, b"-XX0001-urgenturgent", piece),
    ]
}

#[test]
fn blocks_go_first_to_the_playback_that_needs_them_soonest() {
    let (calm, urgent) = (PeerKey(7), PeerKey(8));
    let served = blocks_served(&calm_and_urgent(), false, (1, None), None);
    assert_eq!(
        served,
        [urgent, urgent, urgent, urgent, calm, calm, calm, calm]
    );
}

#[test]
fn while_an_urgent_viewers_channel_is_full_the_others_wait() {
    let served = blocks_served(&calm_and_urgent(), false, (1, None), Some(PeerKey(8)));
    assert!(served.is_empty(), "{served:?}");
}

#[test]
fn the_peer_list_shows_what_each_neighbour_asked_and_where_it_plays() {
    let piece = 4 * 16_384;
    let (mut net, info) = Net::new(2 * piece, piece as u32);
    let seeder = net.add(&info, true, false, SwarmConfig::default());
    let now = net.now;
    let [behind, ahead, idle] = behind_ahead_and_idle();
    let swarm = &mut net.nodes[seeder].swarm;
    for (asker, asked) in [(&behind, 4), (&ahead, 2), (&idle, 0)] {
        let mut wire = BytesMut::from(&extended(0, b"d1:md11:cs_playheadi5eee")[..]);
        if let Some(playhead) = asker.playhead {
            wire.extend_from_slice(&extended(3, &playhead.encode()));
        }
        Message::Interested.encode(&mut wire);
        for block in 0..asked {
            let request = BlockRequest {
                index: 1,
                begin: block * 16_384,
                length: 16_384,
            };
            Message::Request(request).encode(&mut wire);
        }
        raw_peer(swarm, now, asker.key, asker.id, &wire);
        // Nothing drains: the requests stay queued.
        swarm.handle_peer_writable(now, asker.key, false);
    }
    let later = now + Duration::from_secs(3);
    let seen: Vec<(PeerKey, usize, Option<u64>)> = swarm
        .peers(later)
        .into_iter()
        .map(|p| (p.peer, p.requests_in, p.playhead))
        .collect();
    // Playheads move on at the reported bitrate (1,000 bytes a second).
    assert_eq!(
        seen,
        [
            (behind.key, 4, Some(3_000)),
            (ahead.key, 2, Some(23_000)),
            (idle.key, 0, None),
        ]
    );
}

/// Three neighbours ask a playing seeder for piece 1, none of them within
/// `serve_first_within` of playing it: `behind` (key 7) plays from the
/// start, `ahead` (key 8) from 20 KiB in, and `idle` (key 9) does not play.
fn behind_ahead_and_idle() -> [Asker; 3] {
    let player = |key, id, position| Asker {
        key: PeerKey(key),
        id,
        playhead: Some(Playhead {
            position,
            bitrate: 1_000,
        }),
    };
    [
        player(7, b"-XX0001-behindbehind", 0),
        player(8, b"-XX0001-aheadaheadah", 20_000),
        Asker {
            key: PeerKey(9),
            id: b"-XX0001-idleidleidle",
            playhead: None,
        },
    ]
}

#[test]
fn a_player_feeds_one_playing_neighbour_at_a_time_the_furthest_ahead_first() {
    let (behind, ahead, idle) = (PeerKey(7), PeerKey(8), PeerKey(9));
    let served = blocks_served(&behind_ahead_and_idle(), true, (1, None), None);
    // `idle` does not play and is served beside the one stream.
    let expected = [[ahead; 4], [idle; 4], [behind; 4]].concat();
    assert_eq!(served, expected);
    // With two streams both players are fed in the same pass, ahead first.
    let served = blocks_served(&behind_ahead_and_idle(), true, (2, None), None);
    let expected = [[ahead; 4], [behind; 4], [idle; 4]].concat();
    assert_eq!(served, expected);
    // A seeder that does not play serves everyone in turn, as before, and
    // so does a player whose upload is rate-limited (its own order decides).
    let in_turn = [[behind; 4], [ahead; 4], [idle; 4]].concat();
    let served = blocks_served(&behind_ahead_and_idle(), false, (1, None), None);
    assert_eq!(served, in_turn);
    let limit = Some(100 << 20);
    let served = blocks_served(&behind_ahead_and_idle(), true, (1, limit), None);
    assert_eq!(served, in_turn);
}

/// A viewer of 16 pieces of a second each, holding the first eight, paused
/// at the start, whose one neighbour holds pieces 0-9 and plays at piece 9,
/// nine seconds ahead; pieces 10-15 are held by nobody. If `delivered`, the
/// neighbour sent it piece 8 that long before the viewer's periodic work
/// runs. If `congested`, the viewer's lone fetches from the origin have
/// slowed to a tenth of the best. Returns how many unheld pieces the viewer
/// then takes from the origin.
fn unheld_fetches_behind_a_player(delivered: Option<Duration>, congested: bool) -> u32 {
    // Unheld pieces go to the origin once the neighbour has spoken.
    let (mut viewer, net) = streaming_viewer(8, Duration::from_millis(500));
    if congested {
        viewer.http.best_alone_rate = 1e6;
        viewer.http.alone_rate = Some(1e5);
    }
    let (content, mut now) = (net.content, net.now);
    viewer.set_playback(
        now,
        Some(Playback {
            position: 0,
            bitrate: 65_536,
        }),
    );
    let player = PeerKey(7);
    let mut wire = BytesMut::from(&extended(0, b"d1:md11:cs_playheadi5eee")[..]);
    Message::Bitfield(Bytes::from_static(&[0xFF, 0xC0])).encode(&mut wire);
    let playhead = Playhead {
        position: 9 * 65_536,
        bitrate: 65_536,
    };
    wire.extend_from_slice(&extended(3, &playhead.encode()));
    Message::Unchoke.encode(&mut wire);
    raw_peer(&mut viewer, now, player, b"-XX0001-playerplayer", &wire);
    if let Some(ago) = delivered {
        // The viewer asked for piece 8, its first missing, four blocks.
        let mut blocks = BytesMut::new();
        for begin in (0..65_536).step_by(16_384) {
            let start = 8 * 65_536 + begin;
            Message::Piece {
                index: 8,
                begin: begin as u32,
                block: Bytes::copy_from_slice(&content[start..start + 16_384]),
            }
            .encode(&mut blocks);
        }
        now += Duration::from_millis(100);
        viewer.handle_peer_data(now, player, &blocks);
        now += ago;
    }
    for _ in 0..4 {
        now += Duration::from_millis(250);
        viewer.handle_timeout(now);
        while viewer.poll_output().is_some() {}
    }
    viewer.stats(now).origin_fetches.no_peer_source
}

#[test]
fn an_unheld_piece_is_left_to_a_neighbour_that_plays_it_first_and_passes_it_on() {
    // The neighbour, nine seconds ahead, reaches every unheld piece first,
    // and at the rate it sent piece 8 it passes each on in time: its own
    // fetch brings them, and the viewer pays nothing.
    assert_eq!(
        unheld_fetches_behind_a_player(Some(Duration::ZERO), false),
        0
    );
    // A neighbour that never sent anything might not pass them on: the
    // viewer fetches them itself, as before.
    assert!(unheld_fetches_behind_a_player(None, false) > 0);
}

#[test]
fn a_viewer_leaves_unheld_pieces_to_its_rescues_while_the_origin_is_overloaded() {
    assert_eq!(unheld_fetches_behind_a_player(None, true), 0);
}

#[test]
fn a_neighbour_passes_a_piece_on_in_time_only_at_a_rate_that_brings_it() {
    let now = Instant::now();
    let margin = Duration::from_secs(1);
    let (len, in_10_s) = (65_536.0, now + Duration::from_secs(10));
    // 4 s at 16 KiB/s plus the margin: before 10 s; 16 s at 4 KiB/s: not.
    assert!(super::http::passed_on_before(
        now, len, 16_384.0, margin, in_10_s
    ));
    assert!(!super::http::passed_on_before(
        now, len, 4_096.0, margin, in_10_s
    ));
    // A rate decayed to almost nothing, or none, brings nothing in time
    // (and overflows nothing).
    for rate in [1e-300, 0.0, f64::MIN_POSITIVE] {
        assert!(!super::http::passed_on_before(
            now, len, rate, margin, in_10_s
        ));
    }
}
