//! Swarms wired to each other in memory: instant links, an in-memory store
//! per node, and an origin answering from the true content.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use web_time::Instant;

use super::*;
use crate::layout::Block;
use crate::metainfo::TorrentBuilder;
use crate::piece_map::BitfieldError;
use crate::wire::{DecodeError, Handshake, HandshakeError, MessageId, Reserved};

mod ahead;
mod extension;
mod facts;
mod metadata_budget;
mod sources;
mod startup;

struct Node {
    swarm: Swarm,
    store: BTreeMap<u32, Bytes>,
    /// Serves garbage in place of every piece it reads from its store.
    corrupt: bool,
    events: Vec<Event>,
}

enum Delivery {
    Data { from: usize, to: usize, data: Bytes },
    Closed { from: usize, to: usize },
}

struct Net {
    now: Instant,
    content: Vec<u8>,
    nodes: Vec<Node>,
    queue: VecDeque<Delivery>,
    origin_up: bool,
    /// What the origin answers while it is down.
    origin_down_status: u16,
    /// Fetches are kept here unanswered instead of answered at once.
    held_http: Option<Vec<(usize, HttpRequestId, Range<u64>)>>,
    http_fetches: u64,
    links: BTreeSet<(usize, usize)>,
}

fn content(len: usize) -> Vec<u8> {
    let mut state = 0x1234_5678_9abc_def1u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn peer_id(i: usize) -> [u8; 20] {
    let mut id = *b"-CS0001-000000000000";
    id[12..20].copy_from_slice(format!("{i:08}").as_bytes());
    id
}

impl Net {
    fn new(len: usize, piece_length: u32) -> (Self, Info) {
        let content = content(len);
        let info = TorrentBuilder::new()
            .piece_length(piece_length)
            .build_from_reader("content", content.as_slice())
            .unwrap()
            .info()
            .clone();
        let net = Self {
            now: Instant::now(),
            content,
            nodes: Vec::new(),
            queue: VecDeque::new(),
            origin_up: true,
            origin_down_status: 503,
            held_http: None,
            http_fetches: 0,
            links: BTreeSet::new(),
        };
        (net, info)
    }

    fn add(&mut self, info: &Info, seed: bool, corrupt: bool, config: SwarmConfig) -> usize {
        let i = self.nodes.len();
        let pieces = info.layout().piece_count();
        let have = if seed {
            Bitfield::full(pieces)
        } else {
            Bitfield::new(pieces)
        };
        let config = SwarmConfig {
            peer_id: peer_id(i),
            rng_seed: i as u64,
            ..config
        };
        let mut store = BTreeMap::new();
        if seed {
            for piece in info.layout().pieces() {
                let range = info.layout().piece_range(piece);
                store.insert(piece.get(), self.content_of(&range));
            }
        }
        self.nodes.push(Node {
            swarm: Swarm::new(self.now, info.clone(), have, config),
            store,
            corrupt,
            events: Vec::new(),
        });
        i
    }

    fn connect(&mut self, a: usize, b: usize) {
        self.links.insert((a.min(b), a.max(b)));
        let now = self.now;
        self.nodes[a]
            .swarm
            .handle_peer_connected(now, PeerKey(b as u64));
        self.nodes[b]
            .swarm
            .handle_peer_connected(now, PeerKey(a as u64));
        self.drain(a);
        self.drain(b);
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        self.links.remove(&(a.min(b), a.max(b)));
        let now = self.now;
        self.nodes[a]
            .swarm
            .handle_peer_closed(now, PeerKey(b as u64));
        self.nodes[b]
            .swarm
            .handle_peer_closed(now, PeerKey(a as u64));
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    /// Carries out a node's outputs.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        while let Some(output) = self.nodes[i].swarm.poll_output() {
            match output {
                Output::Send { peer, data } => {
                    let to = peer.0 as usize;
                    if self.linked(i, to) {
                        self.queue.push_back(Delivery::Data { from: i, to, data });
                    }
                }
                Output::Close { peer, .. } => {
                    let to = peer.0 as usize;
                    if self.linked(i, to) {
                        self.links.remove(&(i.min(to), i.max(to)));
                        self.queue.push_back(Delivery::Closed { from: i, to });
                    }
                }
                Output::HttpFetch { id, range } if self.held_http.is_some() => {
                    self.held_http.get_or_insert_default().push((i, id, range));
                }
                Output::HttpFetch { id, range } => {
                    self.http_fetches += 1;
                    let result = if self.origin_up {
                        Ok(self.content_of(&range))
                    } else {
                        Err(crate::driver::HttpError::Status(self.origin_down_status))
                    };
                    self.nodes[i].swarm.handle_http_response(now, id, result);
                }
                Output::HttpCancel { .. } => {}
                Output::StorePiece { piece, data } => {
                    self.nodes[i].store.insert(piece.get(), data);
                }
                Output::ReadPiece { piece } => {
                    let node = &mut self.nodes[i];
                    let data = node.store.get(&piece.get()).map(|d| {
                        if node.corrupt {
                            Bytes::from(vec![0xEE; d.len()])
                        } else {
                            d.clone()
                        }
                    });
                    node.swarm.handle_piece_read(now, piece, data);
                }
                Output::Event(event) => self.nodes[i].events.push(event),
            }
        }
    }

    /// Delivers what was sent before this call: one hop of latency per call.
    fn deliver_all(&mut self) {
        let in_flight: Vec<Delivery> = self.queue.drain(..).collect();
        for delivery in in_flight {
            let now = self.now;
            match delivery {
                Delivery::Data { from, to, data } => {
                    if self.linked(from, to) {
                        let swarm = &mut self.nodes[to].swarm;
                        swarm.handle_peer_data(now, PeerKey(from as u64), &data);
                        self.drain(to);
                    }
                }
                Delivery::Closed { from, to } => {
                    self.nodes[to]
                        .swarm
                        .handle_peer_closed(now, PeerKey(from as u64));
                    self.drain(to);
                }
            }
        }
    }

    /// Runs until `done` or `limit` of virtual time, stepping 50 ms at a time.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) {
        let end = self.now + limit;
        while self.now < end && !done(self) {
            for i in 0..self.nodes.len() {
                self.drain(i);
            }
            self.deliver_all();
            self.now += Duration::from_millis(50);
            for i in 0..self.nodes.len() {
                let due = self.nodes[i].swarm.poll_timeout();
                if due.is_some_and(|t| t <= self.now) {
                    let now = self.now;
                    self.nodes[i].swarm.handle_timeout(now);
                    self.drain(i);
                }
            }
            self.deliver_all();
        }
    }

    /// The content's bytes in `range`.
    fn content_of(&self, range: &Range<u64>) -> Bytes {
        Bytes::copy_from_slice(&self.content[range.start as usize..range.end as usize])
    }

    /// Answers a fetch held in `held_http` now, with the content it asked for.
    fn answer_held(&mut self, (node, id, range): (usize, HttpRequestId, Range<u64>)) {
        let body = self.content_of(&range);
        let now = self.now;
        self.nodes[node]
            .swarm
            .handle_http_response(now, id, Ok(body));
    }

    fn assembled(&self, i: usize) -> Vec<u8> {
        self.nodes[i]
            .store
            .values()
            .flat_map(|d| d.to_vec())
            .collect()
    }
}

/// The first piece `node` verified, and its main source.
fn first_verified(net: &Net, node: usize) -> Option<(u32, Source)> {
    net.nodes[node].events.iter().find_map(|e| match e {
        Event::Piece {
            piece,
            state: PieceState::Verified(source),
        } => Some((piece.get(), *source)),
        _ => None,
    })
}

fn no_http() -> SwarmConfig {
    SwarmConfig {
        http: HttpConfig {
            enabled: false,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    }
}

#[test]
fn leecher_downloads_everything_from_a_seeder() {
    let (mut net, info) = Net::new(3 * 65_536 + 100, 65_536);
    let seeder = net.add(&info, true, false, no_http());
    let leecher = net.add(&info, false, false, no_http());
    net.connect(seeder, leecher);
    net.run_until(Duration::from_secs(30), |n| n.nodes[1].swarm.is_complete());
    assert!(net.nodes[leecher].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
    let stats = net.nodes[leecher].swarm.stats(net.now);
    assert_eq!(stats.p2p_bytes, net.content.len() as u64);
    assert_eq!(stats.http_bytes, 0);
    assert!(net.nodes[leecher].events.contains(&Event::Completed));
    let peers = net.nodes[seeder].swarm.peers(net.now);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, Some(peer_id(leecher)));
    assert_eq!(peers[0].uploaded, net.content.len() as u64);
}

#[test]
fn without_peers_http_alone_completes() {
    let (mut net, info) = Net::new(5 * 16_384 + 1, 16_384);
    let leecher = net.add(&info, false, false, SwarmConfig::default());
    net.run_until(Duration::from_secs(60), |n| n.nodes[0].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
    let stats = net.nodes[leecher].swarm.stats(net.now);
    assert_eq!(stats.http_bytes, net.content.len() as u64);
}

#[test]
fn with_the_origin_down_peers_alone_complete() {
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    net.origin_up = false;
    let seeder = net.add(&info, true, false, SwarmConfig::default());
    let leecher = net.add(&info, false, false, SwarmConfig::default());
    net.connect(seeder, leecher);
    net.run_until(Duration::from_secs(60), |n| n.nodes[1].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
}

#[test]
fn corrupt_peer_is_banned_and_honest_peer_is_not() {
    let (mut net, info) = Net::new(16 * 16_384, 16_384);
    let honest = net.add(&info, true, false, no_http());
    let corrupt = net.add(&info, true, true, no_http());
    let leecher = net.add(&info, false, false, no_http());
    net.connect(honest, leecher);
    net.connect(corrupt, leecher);
    net.run_until(Duration::from_secs(120), |n| n.nodes[2].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
    let banned: Vec<PeerKey> = net.nodes[leecher]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PeerBanned { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    assert_eq!(banned, vec![PeerKey(corrupt as u64)]);
}

#[test]
fn a_departing_peer_hands_its_requests_to_others() {
    let (mut net, info) = Net::new(32 * 16_384, 16_384);
    let a = net.add(&info, true, false, no_http());
    let b = net.add(&info, true, false, no_http());
    let leecher = net.add(&info, false, false, no_http());
    net.connect(a, leecher);
    net.connect(b, leecher);
    net.run_until(Duration::from_secs(30), |n| {
        n.nodes[2].swarm.have().count_ones() >= 4
    });
    net.disconnect(a, leecher);
    net.run_until(Duration::from_secs(60), |n| n.nodes[2].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
}

#[test]
fn garbage_from_a_peer_closes_only_that_connection() {
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    let leecher = net.add(&info, false, false, no_http());
    let now = net.now;
    let swarm = &mut net.nodes[leecher].swarm;
    swarm.handle_peer_connected(now, PeerKey(9));
    swarm.handle_peer_data(now, PeerKey(9), b"GET / HTTP/1.1\r\n\r\n");
    let outputs: Vec<Output> = std::iter::from_fn(|| swarm.poll_output()).collect();
    let reason = outputs.iter().find_map(|o| match o {
        Output::Close {
            peer: PeerKey(9),
            reason,
        } => Some(reason),
        _ => None,
    });
    let Some(CloseReason::Protocol(ProtocolViolation::Wire(DecodeError::Handshake(e)))) = reason
    else {
        panic!("closed for a bad handshake: {outputs:?}");
    };
    assert_eq!(*e, HandshakeError::WrongPstrlen { found: b'G' });
    assert_eq!(
        reason.map(ToString::to_string).as_deref(),
        Some("protocol error: handshake protocol string length is 71, expected 19")
    );
}

/// Connects `key` to the swarm as a fast-extension peer and sends `then`
/// after the handshake; returns why the swarm closed the connection, if it
/// did.
fn close_reason_for(
    swarm: &mut Swarm,
    now: Instant,
    key: PeerKey,
    then: &[Message],
) -> Option<CloseReason> {
    swarm.handle_peer_connected(now, key);
    let mut wire = bytes::BytesMut::new();
    Handshake {
        reserved: Reserved::NONE.with_fast(true),
        info_hash: *swarm.info().info_hash().as_bytes(),
        peer_id: *b"-XX0001-protoprotopr",
    }
    .encode(&mut wire);
    for message in then {
        message.encode(&mut wire);
    }
    swarm.handle_peer_data(now, key, &wire);
    std::iter::from_fn(|| swarm.poll_output()).find_map(|o| match o {
        Output::Close { peer, reason } if peer == key => Some(reason),
        _ => None,
    })
}

#[test]
fn protocol_violations_close_with_their_cause() {
    let (mut net, info) = Net::new(4 * 16_384, 16_384);
    let leecher = net.add(&info, false, false, no_http());
    let now = net.now;
    let swarm = &mut net.nodes[leecher].swarm;
    let empty = Message::Bitfield(Bytes::from_static(&[0]));
    let cases: [(&[Message], CloseReason); 4] = [
        (
            &[Message::HaveNone, Message::Have { piece: 4 }],
            ProtocolViolation::HaveOutOfRange { piece: 4 }.into(),
        ),
        (
            &[empty.clone(), empty.clone()],
            ProtocolViolation::UnexpectedMessage(MessageId::Bitfield).into(),
        ),
        (
            &[Message::Bitfield(Bytes::from_static(&[0x01]))],
            ProtocolViolation::Bitfield(BitfieldError::SpareBitsSet { pieces: 4 }).into(),
        ),
        (
            &[empty, Message::HaveAll],
            ProtocolViolation::UnexpectedMessage(MessageId::HaveAll).into(),
        ),
    ];
    for (i, (messages, expected)) in cases.into_iter().enumerate() {
        let got = close_reason_for(swarm, now, PeerKey(20 + i as u64), messages);
        assert_eq!(got.as_ref(), Some(&expected), "{messages:?}");
    }
    assert_eq!(
        ProtocolViolation::HaveOutOfRange { piece: 4 }.to_string(),
        "have for piece 4, out of range"
    );
    assert_eq!(
        CloseReason::from(ProtocolViolation::UnexpectedMessage(MessageId::HaveAll)).to_string(),
        "protocol error: unexpected have all message"
    );
    // A peer that keeps to the protocol stays connected.
    let fine = [
        Message::HaveNone,
        Message::Have { piece: 3 },
        Message::Interested,
    ];
    assert_eq!(close_reason_for(swarm, now, PeerKey(30), &fine), None);
}

#[test]
fn streaming_fetches_the_window_in_order_and_seeks() {
    let (mut net, info) = Net::new(40 * 16_384, 16_384);
    let seeder = net.add(&info, true, false, no_http());
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        min_request_queue: 1,
        max_request_queue: 1,
        ..no_http()
    };
    let viewer = net.add(&info, false, false, config);
    let now = net.now;
    let playback = Playback {
        position: 20 * 16_384,
        bitrate: 16_384,
    };
    assert_eq!(net.nodes[viewer].swarm.playback_piece(), None);
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    let playhead = net.nodes[viewer].swarm.playback_piece();
    assert_eq!(playhead.map(|p| p.get()), Some(20));
    net.connect(seeder, viewer);
    net.run_until(Duration::from_secs(10), |n| {
        n.nodes[1].swarm.have().count_ones() >= 5
    });
    let verified: Vec<u32> = net.nodes[viewer]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Piece {
                piece,
                state: PieceState::Verified(_),
            } => Some(piece.get()),
            _ => None,
        })
        .take(5)
        .collect();
    assert_eq!(verified, vec![20, 21, 22, 23, 24]);
}

/// Checks the bookkeeping invariants of a node's swarm.
fn check_invariants(swarm: &Swarm) {
    use super::download::BlockSlot;
    for piece in swarm.partials.keys() {
        assert!(
            !swarm.have.contains(*piece),
            "piece {piece} held and in progress"
        );
    }
    let mut requesters: BTreeMap<crate::layout::Block, usize> = BTreeMap::new();
    for (key, peer) in &swarm.peers {
        for outstanding in &peer.outstanding {
            let block = outstanding.block;
            assert!(
                !swarm.have.contains(block.piece()),
                "requested a held piece"
            );
            *requesters.entry(block).or_default() += 1;
            let slot = swarm.partials[&block.piece()].blocks[block.index_in_piece() as usize];
            match slot {
                BlockSlot::Requested { by, also } => {
                    assert!(by == *key || also == Some(*key), "{slot:?} vs {key:?}");
                }
                other => panic!("outstanding request for a {other:?} block"),
            }
        }
    }
    for (block, count) in requesters {
        let slot = swarm.partials[&block.piece()].blocks[block.index_in_piece() as usize];
        let endgame = matches!(slot, BlockSlot::Requested { also: Some(_), .. });
        assert!(
            count == 1 || (count == 2 && endgame),
            "{count} requests for {block:?}"
        );
    }
    let layout = swarm.layout;
    let verified: u64 = swarm
        .have
        .iter_ones()
        .map(|p| u64::from(layout.piece_len(p)))
        .sum();
    assert_eq!(swarm.stats.verified_bytes, verified);
    assert_eq!(swarm.stats.pieces_verified, swarm.have.count_ones());
    assert_eq!(swarm.stats.p2p_bytes + swarm.stats.http_bytes, verified);
    for piece in layout.pieces() {
        let holders = swarm
            .peers
            .values()
            .filter(|p| p.is_active() && p.has_piece(piece))
            .count() as u32;
        assert_eq!(
            swarm.availability(piece),
            holders,
            "availability of {piece}"
        );
    }
}

#[derive(Debug, Clone)]
enum Action {
    Connect(usize, usize),
    Disconnect(usize, usize),
    Wait(u16),
    Origin(bool),
    Garbage(usize),
    Seek(u8),
    Pause(bool),
    /// A peer claims it is fetching a piece from the origin (it may lie).
    Claim(usize, usize, u32),
}

fn action() -> impl proptest::strategy::Strategy<Value = Action> {
    use proptest::prelude::*;
    prop_oneof![
        (0..5usize, 0..5usize).prop_map(|(a, b)| Action::Connect(a, b)),
        (0..5usize, 0..5usize).prop_map(|(a, b)| Action::Disconnect(a, b)),
        (1..3000u16).prop_map(Action::Wait),
        any::<bool>().prop_map(Action::Origin),
        (0..5usize).prop_map(Action::Garbage),
        any::<u8>().prop_map(Action::Seek),
        any::<bool>().prop_map(Action::Pause),
        (2..5usize, 0..2usize, 0..14u32)
            .prop_map(|(from, to, piece)| Action::Claim(from, to, piece)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Nodes 0 and 1 download; 2 and 3 seed honestly; 4 seeds garbage.
    #[test]
    fn invariants_hold_under_random_events(actions in proptest::collection::vec(action(), 1..40)) {
        let (mut net, info) = Net::new(12 * 16_384 + 777, 16_384);
        let streaming = SwarmConfig {
            strategy: crate::pick::Strategy::Streaming,
            ..SwarmConfig::default()
        };
        net.add(&info, false, false, SwarmConfig::default());
        net.add(&info, false, false, streaming);
        net.add(&info, true, false, SwarmConfig::default());
        net.add(&info, true, false, SwarmConfig::default());
        net.add(&info, true, true, SwarmConfig::default());
        for action in actions {
            let now = net.now;
            match action {
                Action::Connect(a, b) if a != b && !net.linked(a, b) => net.connect(a, b),
                Action::Disconnect(a, b) if net.linked(a, b) => net.disconnect(a, b),
                Action::Wait(ms) => {
                    net.run_until(Duration::from_millis(u64::from(ms)), |_| false);
                }
                Action::Origin(up) => net.origin_up = up,
                Action::Garbage(i) => {
                    let swarm = &mut net.nodes[i].swarm;
                    swarm.handle_peer_data(now, PeerKey(99), b"\x13BitTorrent protocol garbage");
                }
                Action::Seek(to) => {
                    let position = u64::from(to) * 800;
                    let playback = Playback { position, bitrate: 50_000 };
                    net.nodes[1].swarm.set_playback(now, Some(playback));
                }
                Action::Claim(from, to, piece) if net.linked(from, to) => {
                    let mut data = BytesMut::new();
                    let claim = crate::wire::extension::OriginClaim { piece, hops: 1 };
                    Message::Extended { id: 1, payload: claim.encode() }.encode(&mut data);
                    net.nodes[to].swarm.handle_peer_data(now, PeerKey(from as u64), &data);
                }
                Action::Pause(true) => net.nodes[0].swarm.pause(),
                Action::Pause(false) => net.nodes[0].swarm.resume(now),
                _ => {}
            }
            net.drain(0);
            net.drain(1);
            net.deliver_all();
            check_invariants(&net.nodes[0].swarm);
            check_invariants(&net.nodes[1].swarm);
        }
        // With a source left, both downloads finish byte-exact.
        net.origin_up = true;
        let now = net.now;
        net.nodes[0].swarm.resume(now);
        for a in [0, 1] {
            if !net.linked(a, 2) {
                net.connect(a, 2);
            }
        }
        net.run_until(Duration::from_secs(600), |n| {
            n.nodes[0].swarm.is_complete() && n.nodes[1].swarm.is_complete()
        });
        for i in [0, 1] {
            check_invariants(&net.nodes[i].swarm);
            proptest::prop_assert!(net.nodes[i].swarm.is_complete(), "node {} incomplete", i);
            proptest::prop_assert_eq!(net.assembled(i), net.content.clone());
        }
    }
}

#[test]
fn upload_rate_limit_paces_the_seeder() {
    let (mut net, info) = Net::new(16 * 16_384, 16_384);
    let limited = SwarmConfig {
        upload_rate_limit: Some(64 * 1024),
        ..no_http()
    };
    let seeder = net.add(&info, true, false, limited);
    let leecher = net.add(&info, false, false, no_http());
    net.connect(seeder, leecher);
    let start = net.now;
    net.run_until(Duration::from_secs(60), |n| n.nodes[1].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
    // 256 KiB at 64 KiB/s, less the initial 16 KiB burst: at least 3.5 s.
    let took = net.now - start;
    assert!(took >= Duration::from_millis(3_500), "{took:?}");
    assert!(took <= Duration::from_secs(6), "{took:?}");
}

#[test]
fn origin_byte_budget_paces_http() {
    let (mut net, info) = Net::new(8 * 16_384, 16_384);
    let budget = SwarmConfig {
        http: HttpConfig {
            budget: OriginBudget::MaxBytesPerSecond(16_384),
            patience: Duration::ZERO,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    };
    let leecher = net.add(&info, false, false, budget);
    let start = net.now;
    net.run_until(Duration::from_secs(60), |n| n.nodes[0].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
    // 8 pieces of 16 KiB at 16 KiB/s with two pieces of burst: 6 s at least.
    let took = net.now - start;
    assert!(took >= Duration::from_millis(5_900), "{took:?}");
    assert!(took <= Duration::from_secs(9), "{took:?}");
    assert_eq!(net.http_fetches, 8);
}

#[test]
fn p2p_share_budget_keeps_http_for_what_peers_cannot_supply() {
    let (mut net, info) = Net::new(16 * 16_384, 16_384);
    let config = SwarmConfig {
        http: HttpConfig {
            budget: OriginBudget::TargetP2pShare(0.9),
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    };
    let seeder = net.add(&info, true, false, SwarmConfig::default());
    let leecher = net.add(&info, false, false, config);
    net.connect(seeder, leecher);
    net.run_until(Duration::from_secs(60), |n| n.nodes[1].swarm.is_complete());
    assert_eq!(net.assembled(leecher), net.content);
    let stats = net.nodes[leecher].swarm.stats(net.now);
    assert_eq!(stats.http_bytes_received, 0, "a seed was there: {stats:?}");
}

#[test]
fn fast_start_fetches_the_playhead_piece_over_http_first() {
    let (mut net, info) = Net::new(8 * 16_384, 16_384);
    let seeder = net.add(&info, true, false, SwarmConfig::default());
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        http: HttpConfig {
            first_piece_from_http: true,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    };
    let viewer = net.add(&info, false, false, config);
    let now = net.now;
    let playback = Playback {
        position: 3 * 16_384 + 5,
        bitrate: 4_096,
    };
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    net.connect(seeder, viewer);
    net.run_until(Duration::from_secs(60), |n| n.nodes[1].swarm.is_complete());
    let first_verified = first_verified(&net, viewer);
    assert_eq!(first_verified, Some((3, Source::Http)));
    assert_eq!(net.assembled(viewer), net.content);
    let fetches = net.nodes[viewer].swarm.stats(net.now).origin_fetches;
    assert_eq!(fetches.fast_start, 1, "{fetches:?}");
}

#[test]
fn endgame_duplicates_are_cancelled_and_the_download_completes() {
    let (mut net, info) = Net::new(2 * 16_384, 16_384);
    let a = net.add(&info, true, false, no_http());
    let b = net.add(&info, true, false, no_http());
    let leecher = net.add(&info, false, false, no_http());
    net.connect(a, leecher);
    net.connect(b, leecher);
    // Two blocks, two seeders with deep queues: the second seeder can only
    // get endgame duplicates of what the first was asked for.
    let mut duplicated = false;
    net.run_until(Duration::from_secs(30), |n| {
        duplicated |= n.nodes[2].swarm.partials.values().any(|p| {
            p.blocks.iter().any(|b| {
                matches!(
                    b,
                    super::download::BlockSlot::Requested { also: Some(_), .. }
                )
            })
        });
        n.nodes[2].swarm.is_complete()
    });
    assert!(duplicated, "no endgame duplicate was requested");
    assert_eq!(net.assembled(leecher), net.content);
    let stats = net.nodes[leecher].swarm.stats(net.now);
    assert_eq!(stats.p2p_bytes, net.content.len() as u64);
    // Each duplicate costs at most the one block that raced it.
    assert!(stats.wasted_bytes <= 2 * 16_384, "{stats:?}");
}

#[test]
fn a_metered_viewer_duplicates_only_the_blocks_a_peer_is_late_with() {
    let (mut net, info) = Net::new(64 * 16_384, 16_384);
    let slow = net.add(&info, true, false, no_http());
    let fast = net.add(&info, true, false, no_http());
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        streaming: StreamingConfig {
            window_duplicates: WindowDuplicates::Overdue,
            ..StreamingConfig::default()
        },
        ..no_http()
    };
    let viewer = net.add(&info, false, false, config);
    // 20 s of window at a quarter piece a second: requests stop at piece 5 of 64.
    let playback = Playback {
        position: 0,
        bitrate: 4_096,
    };
    let now = net.now;
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    net.connect(slow, viewer);
    net.connect(fast, viewer);
    while asked_of(&net, viewer, PeerKey(slow as u64)).is_empty() {
        net.drain(slow);
        net.drain(fast);
        net.deliver_all();
    }
    let asked = asked_of(&net, viewer, PeerKey(slow as u64));
    // From now on the slow peer delivers nothing; the fast one all it is asked.
    let duplicated = |net: &Net| -> BTreeSet<u32> {
        net.nodes[viewer]
            .swarm
            .partials
            .iter()
            .filter(|(_, p)| {
                p.blocks.iter().any(|b| {
                    matches!(
                        b,
                        super::download::BlockSlot::Requested { also: Some(_), .. }
                    )
                })
            })
            .map(|(piece, _)| piece.get())
            .collect()
    };
    let start = net.now;
    let (mut early, mut late) = (BTreeSet::new(), BTreeSet::new());
    while net.now < start + Duration::from_millis(1_500) {
        for i in 0..net.nodes.len() {
            net.drain(i);
        }
        net.queue
            .retain(|d| !matches!(d, Delivery::Data { from, .. } if *from == slow));
        net.deliver_all();
        net.now += Duration::from_millis(50);
        let now = net.now;
        for node in &mut net.nodes {
            node.swarm.handle_timeout(now);
        }
        if net.now < start + Duration::from_millis(900) {
            early.extend(duplicated(&net));
        } else {
            late.extend(duplicated(&net));
        }
    }
    // Within the request queue time nothing is asked twice, although the
    // fast peer is idle and every block of the window is requested...
    assert!(early.is_empty(), "{early:?}");
    // ...and once the slow peer is late, its blocks are asked of the fast one.
    assert!(
        !late.is_empty() && late.is_subset(&asked),
        "{late:?} of {asked:?}"
    );
}

#[test]
fn a_playback_rescue_fetches_only_the_blocks_peers_have_not_delivered() {
    let (net, info) = Net::new(4 * 65_536, 65_536);
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        ..SwarmConfig::default()
    };
    let now = net.now;
    let mut viewer = Swarm::new(now, info.clone(), Bitfield::new(4), config);
    // Peers delivered the first two of the playhead piece's four blocks.
    let piece = info.layout().piece(0).unwrap();
    let mut partial = PartialPiece::new(65_536, 4);
    for index in 0..2 {
        let at = index * 16_384;
        partial.data[at..at + 16_384].copy_from_slice(&net.content[at..at + 16_384]);
        partial.blocks[index] = super::download::BlockSlot::Received(Source::Peer(PeerKey(7)));
        partial.received += 1;
    }
    viewer.partials.insert(piece, partial);
    let playback = Playback {
        position: 0,
        bitrate: 65_536,
    };
    viewer.set_playback(now, Some(playback));
    let fetches: Vec<(HttpRequestId, Range<u64>)> = std::iter::from_fn(|| viewer.poll_output())
        .filter_map(|o| match o {
            Output::HttpFetch { id, range } => Some((id, range)),
            _ => None,
        })
        .collect();
    assert_eq!(fetches.len(), 1, "one rescue at a time: {fetches:?}");
    let (id, range) = fetches[0].clone();
    assert_eq!(range, 32_768..65_536);
    let body = Bytes::copy_from_slice(&net.content[32_768..65_536]);
    viewer.handle_http_response(now, id, Ok(body));
    assert!(viewer.have().contains(piece));
    let stats = viewer.stats(now);
    assert_eq!(stats.http_bytes, 32_768, "{stats:?}");
}

#[test]
fn a_piece_due_before_the_one_being_rescued_is_rescued_beside_it() {
    let (net, info) = Net::new(4 * 65_536, 65_536);
    // Room for a third fetch: only the rule holds the last one back.
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        http: HttpConfig {
            max_in_flight: 3,
            ..HttpConfig::default()
        },
        ..SwarmConfig::default()
    };
    let now = net.now;
    let mut viewer = Swarm::new(now, info.clone(), Bitfield::new(4), config);
    let fetched = |viewer: &mut Swarm| -> Vec<Range<u64>> {
        std::iter::from_fn(|| viewer.poll_output())
            .filter_map(|o| match o {
                Output::HttpFetch { range, .. } => Some(range),
                _ => None,
            })
            .collect()
    };
    // No peer: the piece at the playhead is rescued at once...
    let at = |position| Playback {
        position,
        bitrate: 65_536,
    };
    viewer.set_playback(now, Some(at(65_536)));
    assert_eq!(fetched(&mut viewer), vec![65_536..131_072]);
    // ...and, while that rescue runs, the piece before it once playback
    // moves back to it: it is due first.
    viewer.set_playback(now, Some(at(0)));
    assert_eq!(fetched(&mut viewer), vec![0..65_536]);
    // A piece after the one being rescued still waits its turn.
    viewer.set_playback(now, Some(at(3 * 65_536)));
    assert_eq!(fetched(&mut viewer), Vec::<Range<u64>>::new());
}

#[test]
fn blocks_that_cross_our_cancel_are_late_not_unsolicited() {
    let (mut net, info) = Net::new(64 * 16_384, 16_384);
    let seeder = net.add(&info, true, false, no_http());
    let leecher = net.add(&info, false, false, no_http());
    net.connect(seeder, leecher);
    let key = PeerKey(seeder as u64);
    // Run until the leecher has asked the seeder for blocks.
    while net.nodes[leecher]
        .swarm
        .peers
        .get(&key)
        .is_none_or(|p| p.outstanding.is_empty())
    {
        net.drain(seeder);
        net.deliver_all();
    }
    let now = net.now;
    let swarm = &mut net.nodes[leecher].swarm;
    let asked: Vec<Block> = swarm.peers[&key]
        .outstanding
        .iter()
        .map(|o| o.block)
        .collect();
    // Another source completes each piece; then the seeder's copies arrive.
    for block in &asked {
        swarm.cancel_request(now, key, *block);
    }
    let pieces: BTreeSet<PieceIndex> = asked.iter().map(|b| b.piece()).collect();
    for piece in pieces {
        let range = swarm.layout.piece_range(piece);
        let partial = swarm.partials.get_mut(&piece).unwrap();
        partial
            .data
            .copy_from_slice(&net.content[range.start as usize..range.end as usize]);
        partial
            .blocks
            .fill(super::download::BlockSlot::Received(Source::Http));
        partial.received = partial.blocks.len() as u32;
        swarm.piece_complete(now, piece);
    }
    let late = |block: Block| {
        let mut data = BytesMut::new();
        let payload = Bytes::from(vec![0u8; block.length() as usize]);
        Message::Piece {
            index: block.piece().get(),
            begin: block.begin(),
            block: payload,
        }
        .encode(&mut data);
        data.freeze()
    };
    for block in &asked {
        swarm.handle_peer_data(now, key, &late(*block));
    }
    assert_eq!(swarm.peers[&key].unsolicited_blocks, 0);
    // A second copy of the same block was never asked for.
    swarm.handle_peer_data(now, key, &late(asked[0]));
    assert_eq!(swarm.peers[&key].unsolicited_blocks, 1);
}

#[test]
fn a_playback_rescue_withdraws_peer_requests_for_later_pieces() {
    let (mut net, info, seeder, viewer) = seeder_and_streaming_viewer();
    // Playback starts at a piece the viewer lacks: it is rescued over HTTP...
    let first = viewer_asking_ahead(&mut net, &info, viewer, seeder);
    let held = net.held_http.take().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(info.layout().piece_range(first).contains(&held[0].2.start));
    // ...and the next tick withdraws what would share the link with it.
    let later = net.now + Duration::from_millis(300);
    net.now = later;
    net.nodes[viewer].swarm.handle_timeout(later);
    let asked = asked_of(&net, viewer, PeerKey(seeder as u64));
    assert!(asked.iter().all(|p| *p <= first.get()), "{asked:?}");
    net.answer_held(held[0].clone());
    net.run_until(Duration::from_secs(60), |n| n.nodes[1].swarm.is_complete());
    assert_eq!(net.assembled(viewer), net.content);
}

/// A seeder connected to a streaming viewer, over 8 pieces of 64 KiB; the
/// origin's responses are held in `net.held_http`.
fn seeder_and_streaming_viewer() -> (Net, Info, usize, usize) {
    let (mut net, info) = Net::new(8 * 65_536, 65_536);
    let seeder = net.add(&info, true, false, no_http());
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        ..SwarmConfig::default()
    };
    let viewer = net.add(&info, false, false, config);
    net.held_http = Some(Vec::new());
    net.connect(seeder, viewer);
    (net, info, seeder, viewer)
}

/// Runs a viewer from one seeder until it asks for a piece past the first
/// it lacks, then starts playback there; returns the piece and the key of
/// the seeder. The origin's responses are held in `net.held_http`.
fn viewer_asking_ahead(net: &mut Net, info: &Info, viewer: usize, seeder: usize) -> PieceIndex {
    let key = PeerKey(seeder as u64);
    let first_missing = |net: &Net| net.nodes[viewer].swarm.have().iter_zeros().next();
    while asked_of(net, viewer, key)
        .iter()
        .all(|p| first_missing(net).is_some_and(|f| *p <= f.get()))
    {
        net.drain(seeder);
        net.deliver_all();
    }
    let first = first_missing(net).unwrap();
    let now = net.now;
    let playback = Playback {
        position: info.layout().piece_offset(first),
        bitrate: 65_536,
    };
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    net.drain(viewer);
    first
}

/// The pieces `viewer` has block requests out for at `peer`.
fn asked_of(net: &Net, viewer: usize, peer: PeerKey) -> BTreeSet<u32> {
    net.nodes[viewer]
        .swarm
        .peers
        .get(&peer)
        .map_or_else(BTreeSet::new, |p| {
            p.outstanding
                .iter()
                .map(|o| o.block.piece().get())
                .collect()
        })
}

#[test]
fn a_rescue_from_an_origin_slower_than_peers_leaves_them_fetching_later_pieces() {
    let (mut net, info, seeder, viewer) = seeder_and_streaming_viewer();
    // The origin was measured at 1 KB/s, far below what the seeder delivers:
    // the origin, not the viewer's link, limits a rescue.
    net.nodes[viewer].swarm.http.origin_rate = Some(1_000.0);
    let first = viewer_asking_ahead(&mut net, &info, viewer, seeder);
    let held = net.held_http.take().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    let later = net.now + Duration::from_millis(300);
    net.now = later;
    net.nodes[viewer].swarm.handle_timeout(later);
    let asked = asked_of(&net, viewer, PeerKey(seeder as u64));
    assert!(asked.iter().any(|p| *p > first.get()), "{asked:?}");
}

#[test]
fn a_rescue_the_origin_brings_late_is_raced_and_one_on_time_is_left_to_it() {
    // The viewer rescues the piece at its playhead; then playback moves a
    // piece back, so the rescued piece is due in a second.
    let raced = |origin_rate: f64| {
        let (mut net, info, seeder, viewer) = seeder_and_streaming_viewer();
        net.nodes[viewer].swarm.http.origin_rate = Some(origin_rate);
        let first = viewer_asking_ahead(&mut net, &info, viewer, seeder);
        assert_eq!(net.held_http.as_ref().map(Vec::len), Some(1));
        assert!(first.get() > 0, "the viewer holds nothing before {first:?}");
        let later = net.now + Duration::from_millis(100);
        net.now = later;
        let playback = Playback {
            position: info.layout().piece_offset(first) - 65_536,
            bitrate: 65_536,
        };
        net.nodes[viewer].swarm.set_playback(later, Some(playback));
        net.nodes[viewer].swarm.handle_timeout(later);
        asked_of(&net, viewer, PeerKey(seeder as u64)).contains(&first.get())
    };
    // At 1 KB/s the origin brings the piece a minute after its deadline.
    assert!(raced(1_000.0));
    // At 1 MB/s it brings it in 66 ms, on time: the seeder keeps off it.
    assert!(!raced(1e6));
}

/// A streaming viewer alone, over 8 pieces of 64 KiB, playing from the
/// start; the origin's responses are held in `net.held_http`, so its first
/// piece waits on the origin. A seeder is added but not connected.
fn viewer_waiting_on_the_origin(config: HttpConfig) -> (Net, usize, usize) {
    let (mut net, info) = Net::new(8 * 65_536, 65_536);
    let seeder = net.add(&info, true, false, no_http());
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        http: config,
        ..SwarmConfig::default()
    };
    let viewer = net.add(&info, false, false, config);
    net.held_http = Some(Vec::new());
    let now = net.now;
    let playback = Playback {
        position: 0,
        bitrate: 65_536,
    };
    net.nodes[viewer].swarm.set_playback(now, Some(playback));
    net.drain(viewer);
    assert_eq!(net.held_http.as_ref().map(Vec::len), Some(1));
    (net, seeder, viewer)
}

#[test]
fn a_late_playback_rescue_is_raced_by_a_neighbour_holding_the_piece() {
    let (mut net, seeder, viewer) = viewer_waiting_on_the_origin(HttpConfig::default());
    // Playback waits on the rescue of piece 0, which the origin (a piece per
    // 1.5 s until measured) brings after its deadline. A neighbour holding
    // it arrives: it is probed, is faster, and brings the piece.
    net.connect(seeder, viewer);
    net.run_until(Duration::from_secs(2), |n| {
        n.nodes[1]
            .swarm
            .have()
            .contains(PieceIndex::new_unchecked(0))
    });
    let first_verified = first_verified(&net, viewer);
    assert_eq!(
        first_verified,
        Some((0, Source::Peer(PeerKey(seeder as u64))))
    );
    let swarm = &net.nodes[viewer].swarm;
    assert_eq!(
        swarm.http.in_flight_pieces().count(),
        0,
        "the rescue was not cancelled"
    );
}

#[test]
fn the_fast_start_is_not_raced() {
    let config = HttpConfig {
        first_piece_from_http: true,
        ..HttpConfig::default()
    };
    let (mut net, seeder, viewer) = viewer_waiting_on_the_origin(config);
    // The fast start is the origin's by choice: racing it would take from
    // its share of the viewer's link.
    net.connect(seeder, viewer);
    net.run_until(Duration::from_secs(2), |_| false);
    assert!(
        !net.nodes[viewer]
            .swarm
            .have()
            .contains(PieceIndex::new_unchecked(0))
    );
    let asked = asked_of(&net, viewer, PeerKey(seeder as u64));
    assert!(!asked.contains(&0), "{asked:?}");
}

#[test]
fn the_rescue_lead_is_the_origins_measured_time_plus_the_margin() {
    let (net, info) = Net::new(4 * 65_536, 65_536);
    let config = SwarmConfig {
        strategy: crate::pick::Strategy::Streaming,
        ..SwarmConfig::default()
    };
    let margin = config.streaming.rescue_margin.as_secs_f64();
    let guess = config.streaming.origin_piece_time.as_secs_f64();
    let now = net.now;
    let mut viewer = Swarm::new(now, info.clone(), Bitfield::new(4), config);
    // Until a fetch is measured: the configured time, pro rata.
    assert!((viewer.rescue_lead(65_536) - (guess + margin)).abs() < 1e-9);
    assert!((viewer.rescue_lead(32_768) - (guess / 2.0 + margin)).abs() < 1e-9);
    viewer.set_playback(
        now,
        Some(Playback {
            position: 0,
            bitrate: 65_536,
        }),
    );
    let (id, range) = std::iter::from_fn(|| viewer.poll_output())
        .find_map(|o| match o {
            Output::HttpFetch { id, range } => Some((id, range)),
            _ => None,
        })
        .unwrap();
    // The whole piece took half a second: 131,072 bytes a second.
    let body = net.content_of(&range);
    viewer.handle_http_response(now + Duration::from_millis(500), id, Ok(body));
    assert!((viewer.rescue_lead(65_536) - (0.5 + margin)).abs() < 1e-9);
}

#[test]
fn a_piece_half_done_when_its_peers_left_completes_over_http() {
    let (mut net, info) = Net::new(8 * 65_536, 65_536);
    let seeder = net.add(&info, true, false, no_http());
    let leecher = net.add(&info, false, false, SwarmConfig::default());
    net.connect(seeder, leecher);
    let half_done = |net: &Net| {
        net.nodes[leecher]
            .swarm
            .partials
            .values()
            .any(|p| p.received > 0 && (p.received as usize) < p.blocks.len())
    };
    while !half_done(&net) {
        net.drain(seeder);
        net.deliver_all();
    }
    net.disconnect(seeder, leecher);
    net.queue.clear();
    net.run_until(Duration::from_secs(60), |n| n.nodes[1].swarm.is_complete());
    let swarm = &net.nodes[leecher].swarm;
    assert!(swarm.is_complete(), "stuck at {:?}", swarm.have());
    assert!(net.assembled(leecher) == net.content);
}

#[test]
fn lone_origin_fetches_slowed_below_half_the_best_mark_the_origin_overloaded() {
    let (mut net, info) = Net::new(8 * 16_384, 16_384);
    let leecher = net.add(&info, false, false, SwarmConfig::default());
    net.held_http = Some(Vec::new());
    // With no peer, pieces no neighbour holds come from the origin one at
    // a time; each is answered `after` its request.
    let answer = |net: &mut Net, after: Duration| {
        // The answer before may have started the next fetch at once.
        net.drain(leecher);
        let asked = |n: &Net| n.held_http.as_ref().is_some_and(|h| !h.is_empty());
        net.run_until(Duration::from_secs(5), asked);
        let held = net.held_http.replace(Vec::new()).unwrap_or_default();
        assert_eq!(held.len(), 1, "{held:?}");
        net.now += after;
        net.answer_held(held[0].clone());
        net.nodes[leecher].swarm.origin_congested()
    };
    let fast = Duration::from_millis(10);
    let slow = Duration::from_millis(100);
    assert!(!answer(&mut net, fast));
    // One slow answer averages with the fast one to above half of it...
    assert!(!answer(&mut net, slow));
    // ...two do not.
    assert!(answer(&mut net, slow));
    // A fast answer again ends it.
    assert!(!answer(&mut net, fast));
}
