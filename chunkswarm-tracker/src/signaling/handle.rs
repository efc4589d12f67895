//! One client message in, at most one reply to the sender out (messages to
//! other peers go through the registry).

use std::time::Instant;

use chunkswarm_core::metainfo::InfoHash;

use super::ids::PeerId;
use super::message::{self, Announce, Answer, Event, Request};
use super::outbox::Outbox;
use super::reply;
use crate::cluster::{self, ClusterState, MemberReport, Relay, RemoteMember, RemoteSwarm};
use crate::metrics::{Rejection, add};
use crate::registry::{AnswerRoute, ConnId, RegistryError};
use crate::tracker::Inner;

/// The outcome of one message.
#[derive(Debug)]
pub(crate) struct Handled {
    /// The reply to the sender, if any.
    pub(crate) reply: Option<String>,
    /// Whether the message counts against the connection's abuse budget
    /// ([`RegistryError::is_abuse`], or a message that does not parse).
    pub(crate) abuse: bool,
}

fn rejection(e: RegistryError) -> Rejection {
    match e {
        RegistryError::PeerIdTaken => Rejection::PeerIdTaken,
        RegistryError::TooManyPeerIds => Rejection::TooManyPeerIds,
        RegistryError::TooManySwarms | RegistryError::TrackerFull => Rejection::TooManySwarms,
        RegistryError::UnsolicitedAnswer => Rejection::UnsolicitedAnswer,
        RegistryError::ExpiredAnswer => Rejection::ExpiredAnswer,
        RegistryError::UnknownPeer => Rejection::UnknownPeer,
        RegistryError::SlowPeer => Rejection::SlowPeer,
        RegistryError::NotInSwarm => Rejection::NotInSwarm,
        RegistryError::BadPieces | RegistryError::PieceBudget => Rejection::BadPieces,
    }
}

/// The reply `build` writes, unless the sender's own queue is full: then it
/// would only be lost (counted as `slow_peer`, as a reply that did not fit),
/// so it is not written. A client that does not read its replies (aquatic's
/// load tester reads one message per request) would otherwise cost a reply
/// written for nothing on most of its messages.
fn reply_if_room(tracker: &Inner, own: &Outbox, build: impl FnOnce() -> String) -> Option<String> {
    if own.has_room() {
        Some(build())
    } else {
        tracker.metrics.reject(Rejection::SlowPeer);
        None
    }
}

fn refuse(
    tracker: &Inner,
    own: &Outbox,
    action: &str,
    e: RegistryError,
    info_hash: &InfoHash,
) -> Handled {
    tracker.metrics.reject(rejection(e));
    Handled {
        reply: reply_if_room(tracker, own, || {
            reply::failure_text(action, &e.to_string(), Some(info_hash))
        }),
        abuse: e.is_abuse(),
    }
}

/// Claims `peer_id` in the cluster unless `conn` already announced it.
async fn claim(tracker: &Inner, conn: ConnId, peer_id: PeerId) -> Result<(), RegistryError> {
    if tracker.cluster.state() == ClusterState::Alone {
        // The registry checks ownership itself; alone there is nothing more.
        return Ok(());
    }
    let owned = tracker.registry().owns(conn, &peer_id);
    if owned || tracker.cluster.claim(peer_id).await {
        Ok(())
    } else {
        Err(RegistryError::PeerIdTaken)
    }
}

/// Relays the offers the piece map chose for members on other nodes.
fn relay_offers(
    tracker: &Inner,
    announce: &Announce<'_>,
    chosen: &[(usize, usize)],
    members: &[RemoteMember],
) -> usize {
    let node = tracker.cluster.node();
    let mut sent = 0;
    for &(offer, member) in chosen {
        let (Some(offer), Some(member)) = (announce.offers.get(offer), members.get(member)) else {
            continue;
        };
        let text = reply::offer(
            &announce.info_hash,
            &announce.peer_id,
            &offer.offer_id,
            offer.offer,
        );
        tracker.cluster.relay(
            member.node,
            Relay::Offer {
                from_node: node,
                to: member.peer_id,
                from: announce.peer_id,
                offer_id: offer.offer_id,
                info_hash: announce.info_hash,
                text,
            },
        );
        sent += 1;
    }
    add(&tracker.metrics.relays_sent, sent as u64);
    sent
}

/// The member's report as the cluster is to share it: this announce's
/// bitfield and position over what the registry holds.
fn report(tracker: &Inner, announce: &Announce<'_>, library_pieces: Option<u32>) -> MemberReport {
    let held = tracker
        .registry()
        .report(&announce.info_hash, &announce.peer_id)
        .unwrap_or_default();
    let pieces = match &announce.bitfield {
        Some((bytes, claimed)) => claimed
            .or(library_pieces)
            .or(held.pieces.as_ref().map(|(count, _)| *count))
            .map(|count| (count, bytes.clone())),
        None => held.pieces,
    };
    MemberReport {
        complete: held.complete || announce.complete || announce.event == Some(Event::Completed),
        position: announce.position,
        pieces,
    }
}

async fn announce(
    tracker: &Inner,
    own: &Outbox,
    conn: ConnId,
    announce: &Announce<'_>,
    now: Instant,
) -> Handled {
    let metrics = &tracker.metrics;
    add(&metrics.announces, 1);
    let membership = (announce.info_hash, announce.peer_id);
    if let Err(e) = claim(tracker, conn, announce.peer_id).await {
        return refuse(tracker, own, "announce", e, &announce.info_hash);
    }
    let library_pieces = match (&announce.bitfield, &tracker.library) {
        (Some(_), Some(library)) => library.torrents.piece_count(&announce.info_hash),
        _ => None,
    };
    let alone = tracker.cluster.state() == ClusterState::Alone;
    let remote = if alone {
        RemoteSwarm::default()
    } else if announce.event == Some(Event::Stopped) {
        tracker.cluster.forget(Vec::new(), vec![membership]);
        RemoteSwarm::default()
    } else {
        let report = report(tracker, announce, library_pieces);
        tracker
            .cluster
            .join(announce.info_hash, announce.peer_id, report)
            .await
    };
    let members: Vec<RemoteMember> = remote
        .members
        .into_iter()
        .filter(|m| m.peer_id != announce.peer_id)
        .collect();
    let result = tracker
        .registry()
        .announce(conn, announce, library_pieces, &members, now);
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            if !alone && announce.event != Some(Event::Stopped) {
                tracker.cluster.forget(Vec::new(), vec![membership]);
            }
            return refuse(tracker, own, "announce", e, &announce.info_hash);
        }
    };
    let relayed = relay_offers(tracker, announce, &done.remote, &members);
    add(&metrics.offers_forwarded, (done.forwarded + relayed) as u64);
    for _ in 0..done.dropped {
        metrics.reject(Rejection::SlowPeer);
    }
    if let Some(warning) = done.warning {
        metrics.reject(rejection(warning));
    }
    let reply = reply_if_room(tracker, own, || {
        let warning = done.warning.map(|w| w.to_string());
        let ice = match &tracker.ice {
            Some(issuer) if announce.event != Some(Event::Stopped) => Some(issuer.grant(
                &crate::ice::peer_name(&announce.peer_id.0),
                std::time::SystemTime::now(),
            )),
            _ => None,
        };
        reply::announce(
            &announce.info_hash,
            tracker.config.announce_interval.as_secs(),
            cluster::sum(done.counts, remote.counts),
            warning.as_deref(),
            ice.as_deref(),
            done.facts.as_ref(),
        )
    });
    Handled {
        reply,
        abuse: false,
    }
}

async fn answer(
    tracker: &Inner,
    own: &Outbox,
    conn: ConnId,
    answer: &Answer<'_>,
    now: Instant,
) -> Handled {
    if let Err(e) = claim(tracker, conn, answer.peer_id).await {
        return refuse(tracker, own, "announce", e, &answer.info_hash);
    }
    let result = tracker.registry().answer(conn, answer, now);
    match result {
        Ok(route) => {
            add(&tracker.metrics.answers_relayed, 1);
            if let AnswerRoute::Remote(node) = route {
                let text = reply::answer(
                    &answer.info_hash,
                    &answer.peer_id,
                    &answer.offer_id,
                    answer.answer,
                );
                let to = answer.to_peer_id;
                tracker.cluster.relay(node, Relay::Answer { to, text });
                add(&tracker.metrics.relays_sent, 1);
            }
            Handled {
                reply: None,
                abuse: false,
            }
        }
        Err(e) => refuse(tracker, own, "announce", e, &answer.info_hash),
    }
}

/// Handles one text message of connection `conn`, whose own queue is `own`.
pub(crate) async fn text(
    tracker: &Inner,
    own: &Outbox,
    conn: ConnId,
    text: &str,
    now: Instant,
) -> Handled {
    let request = match message::parse(text) {
        Ok(request) => request,
        Err(refusal) => {
            tracker.metrics.reject(Rejection::InvalidMessage);
            return Handled {
                reply: reply_if_room(tracker, own, || reply::failure(&refusal)),
                abuse: true,
            };
        }
    };
    let metrics = &tracker.metrics;
    let interval = tracker.config.announce_interval.as_secs();
    match request {
        Request::Announce(message) => announce(tracker, own, conn, &message, now).await,
        Request::Answer(message) => answer(tracker, own, conn, &message, now).await,
        Request::Scrape(info_hashes) => {
            add(&metrics.scrapes, 1);
            let limit = tracker.config.limits.max_scrape_hashes;
            if info_hashes.len() > limit {
                metrics.reject(Rejection::InvalidMessage);
                return Handled {
                    reply: reply_if_room(tracker, own, || {
                        reply::failure_text("scrape", "too many info_hash", None)
                    }),
                    abuse: true,
                };
            }
            let mut files = tracker.registry().scrape(&info_hashes, limit);
            let hashes: Vec<InfoHash> = files.iter().map(|(ih, _)| *ih).collect();
            let remote = tracker.cluster.remote_counts(&hashes).await;
            for ((_, counts), remote) in files.iter_mut().zip(remote) {
                *counts = cluster::sum(*counts, remote);
            }
            Handled {
                reply: reply_if_room(tracker, own, || reply::scrape(&files, interval)),
                abuse: false,
            }
        }
        Request::Have(have) => {
            if let Err(e) = claim(tracker, conn, have.peer_id).await {
                return refuse(tracker, own, "x_cs_have", e, &have.info_hash);
            }
            let result = tracker.registry().have(conn, &have, now);
            match result {
                Ok(()) => Handled {
                    reply: None,
                    abuse: false,
                },
                Err(e) => refuse(tracker, own, "x_cs_have", e, &have.info_hash),
            }
        }
    }
}
