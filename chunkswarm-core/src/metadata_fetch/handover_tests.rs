//! The fetch hands its connections to the download: the download starts on
//! them, with no second handshake, and acts on what the peers said while
//! the dictionary was being fetched.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use web_time::Instant;

use super::*;
use crate::metainfo::TorrentBuilder;
use crate::piece_map::Bitfield;
use crate::swarm::{
    CloseReason, Event, HandshakenPeer, Output, PeerAvailability, Swarm, SwarmConfig,
};
use crate::wire::PROTOCOL;

pub(super) const FETCHER: PeerId = *b"-CS0001-fetcher00001";
const SEEDER: PeerId = *b"-CS0001-seeder000001";
pub(super) const OTHER: PeerId = *b"-CS0001-other0000001";
const PIECE: u32 = 16 * 1024;

/// A torrent of 24 pieces of 16 KiB, and its content.
pub(super) fn torrent() -> (Info, Vec<u8>) {
    let content: Vec<u8> = (0..24 * PIECE as usize)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let info = TorrentBuilder::new()
        .piece_length(PIECE)
        .build_from_reader("film.webm", content.as_slice())
        .unwrap()
        .info()
        .clone();
    (info, content)
}

pub(super) fn config(peer_id: PeerId) -> SwarmConfig {
    let mut config = SwarmConfig {
        peer_id,
        ..SwarmConfig::default()
    };
    config.http.enabled = false;
    config
}

/// One side of a link: the fetch, then the download that takes it over.
enum Side {
    Fetch(Box<MetadataFetch>),
    Download(Box<Swarm>),
}

/// The fetcher's side and a seeder, linked as `PeerKey(0)` on both ends.
struct Link {
    now: Instant,
    near: Side,
    seeder: Swarm,
    content: Vec<u8>,
    /// What the seeder reported, in order.
    seeder_events: Vec<Event>,
    /// Every chunk of bytes the near side sent.
    near_sent: Vec<Bytes>,
    fetched: Option<Info>,
}

impl Link {
    fn new(info: &Info, content: Vec<u8>) -> Self {
        let now = Instant::now();
        let pieces = info.layout().piece_count();
        let seeder = Swarm::new(now, info.clone(), Bitfield::full(pieces), config(SEEDER));
        let mut link = Self {
            now,
            near: Side::Fetch(Box::new(MetadataFetch::new(info.info_hash(), FETCHER))),
            seeder,
            content,
            seeder_events: Vec::new(),
            near_sent: Vec::new(),
            fetched: None,
        };
        if let Side::Fetch(fetch) = &mut link.near {
            fetch.handle_peer_connected(now, PeerKey(0));
        }
        link.seeder.handle_peer_connected(now, PeerKey(0));
        link
    }

    /// Moves bytes both ways until both sides are quiet.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut to_seeder = Vec::new();
            match &mut self.near {
                Side::Fetch(fetch) => {
                    while let Some(output) = fetch.poll_output() {
                        match output {
                            FetchOutput::Send { data, .. } => to_seeder.push(data),
                            FetchOutput::Done(info) => self.fetched = Some(info),
                            other => panic!("the fetch said {other:?}"),
                        }
                    }
                }
                Side::Download(swarm) => {
                    while let Some(output) = swarm.poll_output() {
                        match output {
                            Output::Send { data, .. } => to_seeder.push(data),
                            Output::Close { reason, .. } => {
                                assert_eq!(reason, CloseReason::BothSeeds);
                            }
                            _ => {}
                        }
                    }
                }
            }
            let mut to_near = Vec::new();
            while let Some(output) = self.seeder.poll_output() {
                match output {
                    Output::Send { data, .. } => to_near.push(data),
                    Output::ReadPiece { piece } => {
                        let layout = self.seeder.info().layout();
                        let start = layout.piece_offset(piece) as usize;
                        let end = start + layout.piece_len(piece) as usize;
                        let data = Bytes::copy_from_slice(&self.content[start..end]);
                        self.seeder.handle_piece_read(now, piece, Some(data));
                    }
                    Output::Event(event) => self.seeder_events.push(event),
                    _ => {}
                }
            }
            if to_seeder.is_empty() && to_near.is_empty() {
                return;
            }
            for data in to_seeder {
                self.seeder.handle_peer_data(now, PeerKey(0), &data);
                self.near_sent.push(data);
            }
            for data in to_near {
                match &mut self.near {
                    Side::Fetch(fetch) => fetch.handle_peer_data(now, PeerKey(0), &data),
                    Side::Download(swarm) => swarm.handle_peer_data(now, PeerKey(0), &data),
                }
            }
        }
    }

    /// The fetch's connections go to a new download of `info`.
    fn hand_over(&mut self, info: &Info) -> Vec<PeerKey> {
        let Side::Fetch(fetch) = std::mem::replace(
            &mut self.near,
            Side::Fetch(Box::new(MetadataFetch::new(info.info_hash(), FETCHER))),
        ) else {
            panic!("handed over twice");
        };
        let pieces = info.layout().piece_count();
        let mut swarm = Swarm::new(
            self.now,
            info.clone(),
            Bitfield::new(pieces),
            config(FETCHER),
        );
        let mut keys = Vec::new();
        for (key, handover) in fetch.into_handover() {
            keys.push(key);
            swarm.admit_peer(self.now, key, handover);
        }
        self.near = Side::Download(Box::new(swarm));
        self.near_sent.clear();
        keys
    }

    fn download(&self) -> &Swarm {
        match &self.near {
            Side::Download(swarm) => swarm,
            Side::Fetch(_) => panic!("not handed over"),
        }
    }
}

fn handshakes_in(sent: &[Bytes]) -> usize {
    sent.iter()
        .filter(|data| data.len() > 20 && data[0] == 19 && &data[1..20] == PROTOCOL)
        .count()
}

#[test]
fn the_download_starts_on_the_fetchs_connection() {
    let (info, content) = torrent();
    let mut link = Link::new(&info, content.clone());
    link.pump();
    assert_eq!(link.fetched.as_ref(), Some(&info));

    // The seeder talks to the same connection throughout.
    assert_eq!(link.hand_over(&info), [PeerKey(0)]);
    link.pump();
    let download = link.download();
    assert!(download.is_complete());
    assert_eq!(download.stats(link.now).p2p_bytes, content.len() as u64);
    assert_eq!(handshakes_in(&link.near_sent), 0, "no second handshake");
    let connected = link
        .seeder_events
        .iter()
        .filter(|e| matches!(e, Event::PeerConnected { .. }))
        .count();
    assert_eq!(connected, 1, "{:?}", link.seeder_events);
    // Closed only once both sides hold everything.
    let disconnected: Vec<&CloseReason> = link
        .seeder_events
        .iter()
        .filter_map(|e| match e {
            Event::PeerDisconnected { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        disconnected.iter().all(|r| **r == CloseReason::BothSeeds),
        "{disconnected:?}"
    );
}

/// A hand-driven peer's handshake and extension handshake (offering
/// `ut_metadata`, so the fetch keeps it).
fn other_peer_greeting(info: &Info) -> BytesMut {
    let mut wire = BytesMut::new();
    Handshake {
        reserved: Reserved::NONE.with_fast(true).with_extended(true),
        info_hash: *info.info_hash().as_bytes(),
        peer_id: OTHER,
    }
    .encode(&mut wire);
    let extensions = ExtensionHandshake {
        extensions: BTreeMap::from([(METADATA_EXTENSION.to_owned(), 5)]),
        metadata_size: Some(info.encoded().len() as u64),
        ..ExtensionHandshake::default()
    };
    Message::Extended {
        id: EXTENSION_HANDSHAKE_ID,
        payload: extensions.encode(),
    }
    .encode(&mut wire);
    wire
}

/// The messages of a stream that follows the handshake.
fn messages(sent: &[Bytes]) -> Vec<Message> {
    let mut decoder = Decoder::default();
    for data in sent {
        decoder.extend(data);
    }
    std::iter::from_fn(|| decoder.decode().unwrap()).collect()
}

/// The fetch is done with the seeder's copy; a second peer then connects
/// and says `said` (after its greeting), all before the handover.
fn parked_with_other_peer(said: &[Message], unread: &[u8]) -> (Link, Info) {
    let (info, content) = torrent();
    let mut link = Link::new(&info, content);
    link.pump();
    assert!(link.fetched.is_some());
    let Side::Fetch(fetch) = &mut link.near else {
        unreachable!()
    };
    fetch.handle_peer_connected(link.now, PeerKey(1));
    let mut wire = other_peer_greeting(&info);
    for message in said {
        message.encode(&mut wire);
    }
    wire.extend_from_slice(unread);
    fetch.handle_peer_data(link.now, PeerKey(1), &wire);
    (link, info)
}

/// What the download sent to `peer` since the handover.
fn sent_to(swarm: &mut Swarm, peer: PeerKey) -> (Vec<Bytes>, Vec<Output>) {
    let mut sent = Vec::new();
    let mut other = Vec::new();
    while let Some(output) = swarm.poll_output() {
        match output {
            Output::Send { peer: to, data } if to == peer => sent.push(data),
            output => other.push(output),
        }
    }
    (sent, other)
}

#[test]
fn what_a_peer_said_before_the_handover_is_acted_on() {
    // 24 pieces: a bitfield of 3 bytes; it has pieces 0..8, then 9.
    let said = [
        Message::Bitfield(Bytes::from_static(&[0xff, 0, 0])),
        Message::Have { piece: 9 },
        Message::Unchoke,
    ];
    // The first 4 bytes of an `interested`.
    let (mut link, info) = parked_with_other_peer(&said, &[0, 0, 0, 1]);
    let Side::Fetch(fetch) = &mut link.near else {
        unreachable!()
    };
    // The fetch sent its handshake, `have none` and extension handshake.
    while fetch.poll_output().is_some() {}
    link.hand_over(&info);
    let Side::Download(download) = &mut link.near else {
        unreachable!()
    };
    let (sent, _) = sent_to(download, PeerKey(1));
    assert_eq!(handshakes_in(&sent), 0);
    let sent = messages(&sent);
    assert!(
        matches!(
            sent[0],
            Message::Extended {
                id: EXTENSION_HANDSHAKE_ID,
                ..
            }
        ),
        "our second extension handshake first: {sent:?}"
    );
    assert!(sent.contains(&Message::Interested), "{sent:?}");
    let asked: Vec<u32> = sent
        .iter()
        .filter_map(|m| match m {
            Message::Request(request) => Some(request.index),
            _ => None,
        })
        .collect();
    assert!(!asked.is_empty(), "unchoked: blocks are asked for at once");
    assert!(
        asked.iter().all(|piece| *piece < 8 || *piece == 9),
        "{asked:?}"
    );
    let other = link.download().peers(link.now);
    let peer = other.iter().find(|p| p.peer == PeerKey(1)).unwrap();
    assert_eq!(peer.peer_id, Some(OTHER));
    assert_eq!(peer.pieces, 9);
    assert!(!peer.peer_choking && !peer.peer_interested);

    // The unread bytes were kept: the message they begin completes.
    let Side::Download(download) = &mut link.near else {
        unreachable!()
    };
    download.handle_peer_data(link.now, PeerKey(1), &[2]);
    let peers = download.peers(link.now);
    assert!(
        peers
            .iter()
            .any(|p| p.peer == PeerKey(1) && p.peer_interested)
    );
}

#[test]
fn a_bitfield_of_the_wrong_length_closes_the_connection_at_the_handover() {
    let said = [Message::Bitfield(Bytes::from_static(&[0xff]))];
    let (mut link, info) = parked_with_other_peer(&said, &[]);
    link.hand_over(&info);
    let Side::Download(download) = &mut link.near else {
        unreachable!()
    };
    let (_, other) = sent_to(download, PeerKey(1));
    let closed = other.iter().find_map(|o| match o {
        Output::Close { peer, reason } if *peer == PeerKey(1) => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(closed, Some(CloseReason::Protocol(_))),
        "{other:?}"
    );
    // The seeder's connection goes on.
    assert_eq!(download.peers(link.now).len(), 1);
}

#[test]
fn a_handshake_half_in_at_the_handover_is_finished_by_the_download() {
    let (info, content) = torrent();
    let mut link = Link::new(&info, content);
    link.pump();
    let Side::Fetch(fetch) = &mut link.near else {
        unreachable!()
    };
    fetch.handle_peer_connected(link.now, PeerKey(1));
    let greeting = other_peer_greeting(&info);
    let (head, tail) = greeting.split_at(30);
    fetch.handle_peer_data(link.now, PeerKey(1), head);
    while fetch.poll_output().is_some() {}
    link.hand_over(&info);
    let Side::Download(download) = &mut link.near else {
        unreachable!()
    };
    download.handle_peer_data(link.now, PeerKey(1), tail);
    let (sent, _) = sent_to(download, PeerKey(1));
    assert_eq!(handshakes_in(&sent), 0, "the fetch sent ours already");
    let sent = messages(&sent);
    assert_eq!(sent[0], Message::HaveNone, "{sent:?}");
    assert!(matches!(
        sent[1],
        Message::Extended {
            id: EXTENSION_HANDSHAKE_ID,
            ..
        }
    ));
    let peers = download.peers(link.now);
    assert!(peers.iter().any(|p| p.peer_id == Some(OTHER)));
}

#[test]
fn a_peer_that_is_ourselves_a_duplicate_or_banned_is_refused_at_the_handover() {
    let (info, _) = torrent();
    let pieces = info.layout().piece_count();
    let now = Instant::now();
    let mut swarm = Swarm::new(now, info.clone(), Bitfield::new(pieces), config(FETCHER));
    let handshaken = |peer_id| {
        PeerHandover::Handshaken(Box::new(HandshakenPeer {
            handshake: Handshake {
                reserved: Reserved::NONE.with_fast(true),
                info_hash: *info.info_hash().as_bytes(),
                peer_id,
            },
            extension_handshake: None,
            availability: PeerAvailability::default(),
            choking: true,
            interested: false,
            unread: Bytes::new(),
        }))
    };
    swarm.admit_peer(now, PeerKey(0), handshaken(OTHER));
    swarm.admit_peer(now, PeerKey(1), handshaken(OTHER));
    swarm.admit_peer(now, PeerKey(2), handshaken(FETCHER));
    swarm.ban_peer_id(now, SEEDER);
    swarm.admit_peer(now, PeerKey(3), handshaken(SEEDER));
    let closed: Vec<(PeerKey, CloseReason)> = std::iter::from_fn(|| swarm.poll_output())
        .filter_map(|o| match o {
            Output::Close { peer, reason } => Some((peer, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        [
            (PeerKey(1), CloseReason::Duplicate),
            (PeerKey(2), CloseReason::Duplicate),
            (PeerKey(3), CloseReason::Banned)
        ]
    );
    assert_eq!(swarm.peers(now).len(), 1);
}

#[test]
fn once_done_a_peer_that_cannot_give_metadata_is_kept_for_the_download() {
    let (info, content) = torrent();
    let mut link = Link::new(&info, content);
    link.pump();
    let Side::Fetch(fetch) = &mut link.near else {
        unreachable!()
    };
    fetch.handle_peer_connected(link.now, PeerKey(1));
    let mut wire = BytesMut::new();
    Handshake {
        reserved: Reserved::NONE.with_fast(true),
        info_hash: *info.info_hash().as_bytes(),
        peer_id: OTHER,
    }
    .encode(&mut wire);
    Message::HaveAll.encode(&mut wire);
    fetch.handle_peer_data(link.now, PeerKey(1), &wire);
    let outputs: Vec<FetchOutput> = std::iter::from_fn(|| fetch.poll_output()).collect();
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, FetchOutput::Close { .. })),
        "{outputs:?}"
    );
    // No extension bit: `have none` alone answered its handshake.
    let mut sent = BytesMut::new();
    for output in &outputs {
        if let FetchOutput::Send {
            peer: PeerKey(1),
            data,
        } = output
        {
            sent.extend_from_slice(data);
        }
    }
    assert_eq!(handshakes_in(&[sent.clone().freeze()]), 1);
    assert_eq!(messages(&[sent.freeze().slice(68..)]), [Message::HaveNone]);
    link.hand_over(&info);
    let peers = link.download().peers(link.now);
    let other = peers.iter().find(|p| p.peer == PeerKey(1)).unwrap();
    assert!(other.is_seed && other.am_interested);
}
