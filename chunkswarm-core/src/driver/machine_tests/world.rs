//! A virtual world for the driver's state machine: peers (each a machine
//! and what its shell would hold), a fake tracker that relays offers and
//! answers, a fake connector whose connections open when both ends open
//! the same offer, and channels that carry bytes between machines. Time
//! only moves when the world says so; nothing touches a socket or WebRTC.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use web_time::Instant;

use crate::driver::action::{Action, Attempt};
use crate::driver::config::DriverConfig;
use crate::driver::handle::DriverEvent;
use crate::driver::io::ConnectError;
use crate::driver::machine::Machine;
use crate::driver::signal::{Announce, AnnounceEvent, Id20, SignalIn, SignalOut};
use crate::layout::PieceIndex;
use crate::metainfo::{Info, InfoHash, TorrentBuilder};
use crate::piece_map::Bitfield;
use crate::swarm::{Event, PeerKey, SwarmConfig};

/// How long a message or a byte takes between two parties.
pub(super) const LATENCY: Duration = Duration::from_millis(20);
/// Unix seconds at the world's start (ICE credentials expire by it).
const UNIX_START: u64 = 1_700_000_000;

/// One peer: a machine and the I/O its shell would hold.
pub(super) struct Peer {
    pub(super) machine: Machine,
    pub(super) id: Id20,
    /// Every event the machine published.
    pub(super) events: Vec<DriverEvent>,
    /// Every message it sent to the tracker, with when.
    pub(super) sent: Vec<(Instant, SignalOut)>,
    /// Every action, with when (for assertions on the protocol).
    pub(super) actions: Vec<(Instant, Action)>,
    /// The piece store.
    pub(super) store: BTreeMap<PieceIndex, Bytes>,
    /// Attempts whose channel is opening, by the offer they use.
    opening: BTreeMap<Attempt, Id20>,
    /// Answered attempts, by the offer they answer.
    answering: BTreeMap<Attempt, Id20>,
    /// Open channels: our key to the remote peer's index and key.
    pub(super) links: BTreeMap<PeerKey, (usize, PeerKey)>,
}

/// Something on its way.
enum Delivery {
    Signal(usize, SignalIn),
    Data(usize, PeerKey, Bytes),
    Closed(usize, PeerKey),
}

/// The fake tracker's swarm members: peer index and id, by torrent.
#[derive(Default)]
pub(super) struct Tracker {
    /// Whether the tracker answers at all.
    pub(super) up: bool,
    /// Announces of these torrents are refused with this reason.
    pub(super) refuse: BTreeMap<InfoHash, String>,
    members: BTreeMap<InfoHash, BTreeSet<usize>>,
}

/// The peers, the tracker, the wires, and the clock.
pub(super) struct World {
    pub(super) now: Instant,
    pub(super) peers: Vec<Peer>,
    pub(super) tracker: Tracker,
    /// Whether connections open (ICE succeeds) at all.
    pub(super) links_work: bool,
    /// Ends that asked to open, by offer: (peer, attempt).
    ends: BTreeMap<Id20, Vec<(usize, Attempt)>>,
    in_flight: Vec<(Instant, u64, Delivery)>,
    sequence: u64,
}

/// A torrent of `len` bytes in 16 KiB pieces, and its content.
pub(super) fn torrent(len: usize) -> (Info, Bytes) {
    let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let meta = TorrentBuilder::new()
        .piece_length(16 << 10)
        .build_from_reader("clip.bin", content.as_slice())
        .unwrap();
    (meta.info().clone(), Bytes::from(content))
}

/// The start of virtual time: any instant will do, the real one is handy.
#[allow(
    clippy::disallowed_methods,
    reason = "the virtual clock starts at an arbitrary instant"
)]
pub(super) fn epoch() -> Instant {
    Instant::now()
}

impl World {
    /// `count` peers with seeded ids, the tracker up, links working.
    pub(super) fn new(count: usize) -> Self {
        let now = epoch();
        let peers = (0..count)
            .map(|i| {
                let config = DriverConfig::seeded(1000 + i as u64);
                Peer {
                    id: config.peer_id,
                    machine: Machine::new(config, true, true),
                    events: Vec::new(),
                    sent: Vec::new(),
                    actions: Vec::new(),
                    store: BTreeMap::new(),
                    opening: BTreeMap::new(),
                    answering: BTreeMap::new(),
                    links: BTreeMap::new(),
                }
            })
            .collect();
        Self {
            now,
            peers,
            tracker: Tracker {
                up: true,
                ..Tracker::default()
            },
            links_work: true,
            ends: BTreeMap::new(),
            in_flight: Vec::new(),
            sequence: 0,
        }
    }

    /// Adds the torrent to peer `i`, holding every piece or none.
    pub(super) fn add(&mut self, i: usize, info: &Info, content: &Bytes, seeding: bool) {
        let layout = info.layout();
        let mut held = Bitfield::new(layout.piece_count());
        if seeding {
            for piece in layout.pieces() {
                held.insert(piece);
                let range = layout.piece_range(piece);
                let range = range.start as usize..range.end as usize;
                self.peers[i].store.insert(piece, content.slice(range));
            }
        }
        let now = self.now;
        self.peers[i]
            .machine
            .add_torrent(now, info.clone(), held, SwarmConfig::default(), false)
            .unwrap();
        self.settle();
    }

    /// The store's content of peer `i`, if it holds every piece.
    pub(super) fn content(&self, i: usize, info: &Info) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for piece in info.layout().pieces() {
            out.extend_from_slice(self.peers[i].store.get(&piece)?);
        }
        Some(out)
    }

    /// Whether peer `i` heard `wanted`.
    pub(super) fn heard(&self, i: usize, wanted: impl Fn(&Event) -> bool) -> bool {
        self.peers[i].events.iter().any(|e| wanted(&e.event))
    }

    /// Peer `i`'s announces, with when they were sent.
    pub(super) fn announces(&self, i: usize) -> Vec<(Instant, Announce)> {
        self.peers[i]
            .sent
            .iter()
            .filter_map(|(at, m)| match m {
                SignalOut::Announce(a) => Some((*at, a.clone())),
                _ => None,
            })
            .collect()
    }

    /// Delivers a tracker message to peer `i` now.
    pub(super) fn tell(&mut self, i: usize, message: SignalIn) {
        let now = self.now;
        self.peers[i]
            .machine
            .handle_signal(now, UNIX_START, message);
        self.settle();
    }

    /// Runs until `until` has passed from now, or `done` holds.
    pub(super) fn run_for(&mut self, until: Duration, mut done: impl FnMut(&Self) -> bool) {
        let end = self.now + until;
        loop {
            self.settle();
            if done(self) {
                return;
            }
            let next_delivery = self.in_flight.iter().map(|(at, _, _)| *at).min();
            let next_timeout = self
                .peers
                .iter()
                .filter_map(|p| p.machine.poll_timeout())
                .min();
            let Some(next) = next_delivery.into_iter().chain(next_timeout).min() else {
                self.now = end;
                return;
            };
            if next > end {
                self.now = end;
                self.settle();
                return;
            }
            self.now = self.now.max(next);
            self.deliver_due();
            let now = self.now;
            for peer in &mut self.peers {
                if peer.machine.poll_timeout().is_some_and(|at| at <= now) {
                    peer.machine.handle_timeout(now);
                }
            }
        }
    }

    fn deliver_due(&mut self) {
        let now = self.now;
        let mut due: Vec<(Instant, u64, Delivery)> = Vec::new();
        let mut later = Vec::new();
        for item in std::mem::take(&mut self.in_flight) {
            if item.0 <= now {
                due.push(item);
            } else {
                later.push(item);
            }
        }
        self.in_flight = later;
        due.sort_by_key(|(at, seq, _)| (*at, *seq));
        for (_, _, delivery) in due {
            match delivery {
                Delivery::Signal(i, message) => {
                    self.peers[i]
                        .machine
                        .handle_signal(now, UNIX_START, message);
                }
                Delivery::Data(i, key, data) => {
                    self.peers[i].machine.handle_channel_data(now, key, &data);
                }
                Delivery::Closed(i, key) => {
                    if self.peers[i].links.remove(&key).is_some() {
                        self.peers[i].machine.handle_channel_closed(now, key);
                    }
                }
            }
            self.settle();
        }
    }

    fn send(&mut self, delivery: Delivery) {
        self.sequence += 1;
        self.in_flight
            .push((self.now + LATENCY, self.sequence, delivery));
    }

    /// Carries out every queued action of every peer, until none is left.
    pub(super) fn settle(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.peers.len() {
                while let Some(action) = self.peers[i].machine.poll_output() {
                    any = true;
                    self.peers[i].actions.push((self.now, action.clone()));
                    self.act(i, action);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        let now = self.now;
        match action {
            Action::Signal(message) => {
                self.peers[i].sent.push((now, message.clone()));
                self.track(i, message);
            }
            Action::Publish(event) => self.peers[i].events.push(event),
            Action::SetIceServers(_)
            | Action::DropOffer { .. }
            | Action::Forget { .. }
            | Action::MetadataFetched { .. } => {}
            Action::MakeOffers { info_hash, ids } => {
                let made = ids.iter().map(|id| (*id, offer_sdp(id))).collect();
                self.peers[i]
                    .machine
                    .handle_offers_made(now, info_hash, made);
            }
            Action::AcceptOffer { attempt, offer_sdp } => {
                let offer_id = offer_of(&offer_sdp);
                self.peers[i].answering.insert(attempt, offer_id);
                let answer = Ok(format!("answer to {offer_sdp}"));
                self.peers[i]
                    .machine
                    .handle_answer_made(now, attempt, answer);
            }
            Action::OpenOffer {
                offer_id, attempt, ..
            } => self.open(i, attempt, offer_id),
            Action::OpenAnswered { attempt } => {
                let offer_id = self.peers[i].answering.remove(&attempt).unwrap();
                self.open(i, attempt, offer_id);
            }
            Action::Abandon { attempt } => {
                self.peers[i].answering.remove(&attempt);
                if let Some(offer_id) = self.peers[i].opening.remove(&attempt) {
                    if let Some(ends) = self.ends.get_mut(&offer_id) {
                        ends.retain(|end| *end != (i, attempt));
                    }
                }
            }
            Action::ChannelSend { peer, data } => {
                if let Some((j, remote_key)) = self.peers[i].links.get(&peer).copied() {
                    self.send(Delivery::Data(j, remote_key, data));
                }
            }
            Action::ChannelClose { peer } => {
                if let Some((j, remote_key)) = self.peers[i].links.remove(&peer) {
                    self.send(Delivery::Closed(j, remote_key));
                }
            }
            Action::HttpFetch { info_hash, id, .. } => {
                let no_seed = Err(crate::driver::HttpError::NoWebSeed);
                self.peers[i]
                    .machine
                    .handle_http_response(now, info_hash, id, no_seed);
            }
            Action::HttpCancel { .. } => {}
            Action::ReadPiece { info_hash, piece } => {
                let data = self.peers[i].store.get(&piece).cloned();
                self.peers[i]
                    .machine
                    .handle_piece_read(now, info_hash, piece, data);
            }
            Action::WritePiece {
                info_hash,
                piece,
                data,
            } => {
                self.peers[i].store.insert(piece, data);
                self.peers[i]
                    .machine
                    .handle_written(info_hash, piece, Ok(()));
            }
            Action::SyncStore { info_hash } => {
                self.peers[i].machine.handle_synced(info_hash, Ok(()));
            }
        }
    }

    /// One end of the connection made for `offer_id` opens; once both
    /// have, they are linked (or fail together when links do not work).
    fn open(&mut self, i: usize, attempt: Attempt, offer_id: Id20) {
        self.peers[i].opening.insert(attempt, offer_id);
        let ends = self.ends.entry(offer_id).or_default();
        ends.push((i, attempt));
        if ends.len() < 2 {
            return;
        }
        let ends = self.ends.remove(&offer_id).unwrap();
        let now = self.now;
        if !self.links_work {
            for (p, a) in ends {
                self.peers[p].opening.remove(&a);
                let error = ConnectError::Failed("ICE failed".into());
                self.peers[p].machine.handle_connect_failed(now, a, error);
            }
            return;
        }
        let [(a, attempt_a), (b, attempt_b)] = ends[..] else {
            panic!("three ends opened offer {offer_id:?}");
        };
        self.peers[a].opening.remove(&attempt_a);
        self.peers[b].opening.remove(&attempt_b);
        let key_a = self.peers[a].machine.handle_connected(now, attempt_a);
        let key_b = self.peers[b].machine.handle_connected(now, attempt_b);
        if let (Some(key_a), Some(key_b)) = (key_a, key_b) {
            self.peers[a].links.insert(key_a, (b, key_b));
            self.peers[b].links.insert(key_b, (a, key_a));
        }
    }

    /// The fake tracker: keeps members, relays offers (one per other
    /// member) and answers, replies to announces or refuses them.
    fn track(&mut self, i: usize, message: SignalOut) {
        if !self.tracker.up {
            return;
        }
        match message {
            SignalOut::Announce(a) => {
                if let Some(reason) = self.tracker.refuse.get(&a.info_hash).cloned() {
                    let info_hash = Some(a.info_hash);
                    self.send(Delivery::Signal(i, SignalIn::Failure { info_hash, reason }));
                    return;
                }
                let members = self.tracker.members.entry(a.info_hash).or_default();
                if a.event == Some(AnnounceEvent::Stopped) {
                    members.remove(&i);
                    return;
                }
                members.insert(i);
                let others: Vec<usize> = members.iter().copied().filter(|j| *j != i).collect();
                for (j, (offer_id, sdp)) in others.into_iter().zip(a.offers) {
                    let offer = SignalIn::Offer {
                        info_hash: a.info_hash,
                        from: a.peer_id,
                        offer_id,
                        sdp,
                    };
                    self.send(Delivery::Signal(j, offer));
                }
                let reply = SignalIn::Announced {
                    info_hash: a.info_hash,
                    interval: Some(Duration::from_secs(120)),
                    complete: None,
                    incomplete: None,
                    ice: None,
                    facts: None,
                };
                self.send(Delivery::Signal(i, reply));
            }
            SignalOut::Answer {
                info_hash,
                peer_id,
                to_peer_id,
                offer_id,
                sdp,
            } => {
                let Some(j) = self.peers.iter().position(|p| p.id == to_peer_id) else {
                    return;
                };
                let answer = SignalIn::Answer {
                    info_hash,
                    from: peer_id,
                    offer_id,
                    sdp,
                };
                self.send(Delivery::Signal(j, answer));
            }
            SignalOut::Have { .. } => {}
        }
    }
}

fn offer_sdp(id: &Id20) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("offer {hex}")
}

fn offer_of(sdp: &str) -> Id20 {
    let hex = sdp.strip_prefix("offer ").unwrap();
    let mut id = [0u8; 20];
    for (k, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).unwrap();
    }
    id
}
