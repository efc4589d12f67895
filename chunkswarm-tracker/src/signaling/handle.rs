//! One client message in, at most one reply to the sender out (messages to
//! other peers go through the registry).

use std::time::Instant;

use chunkswarm_core::metainfo::InfoHash;

use super::message::{self, Request};
use super::reply;
use crate::metrics::{Rejection, add};
use crate::registry::{ConnId, RegistryError};
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

fn refuse(tracker: &Inner, action: &str, e: RegistryError, info_hash: &InfoHash) -> Handled {
    tracker.metrics.reject(rejection(e));
    Handled {
        reply: Some(reply::failure_text(action, &e.to_string(), Some(info_hash))),
        abuse: e.is_abuse(),
    }
}

/// Handles one text message of connection `conn`.
pub(crate) fn text(tracker: &Inner, conn: ConnId, text: &str, now: Instant) -> Handled {
    let request = match message::parse(text) {
        Ok(request) => request,
        Err(refusal) => {
            tracker.metrics.reject(Rejection::InvalidMessage);
            return Handled {
                reply: Some(reply::failure(&refusal)),
                abuse: true,
            };
        }
    };
    let metrics = &tracker.metrics;
    let interval = tracker.config.announce_interval.as_secs();
    match request {
        Request::Announce(announce) => {
            add(&metrics.announces, 1);
            let library_pieces = match (&announce.bitfield, &tracker.library) {
                (Some(_), Some(library)) => library.torrents.piece_count(&announce.info_hash),
                _ => None,
            };
            let result = tracker
                .registry()
                .announce(conn, &announce, library_pieces, now);
            match result {
                Ok(done) => {
                    add(&metrics.offers_forwarded, done.forwarded as u64);
                    for _ in 0..done.dropped {
                        metrics.reject(Rejection::SlowPeer);
                    }
                    if let Some(warning) = done.warning {
                        metrics.reject(rejection(warning));
                    }
                    let warning = done.warning.map(|w| w.to_string());
                    let text = reply::announce(
                        &announce.info_hash,
                        interval,
                        done.counts,
                        warning.as_deref(),
                    );
                    Handled {
                        reply: Some(text),
                        abuse: false,
                    }
                }
                Err(e) => refuse(tracker, "announce", e, &announce.info_hash),
            }
        }
        Request::Answer(answer) => {
            let result = tracker.registry().answer(conn, &answer, now);
            match result {
                Ok(()) => {
                    add(&metrics.answers_relayed, 1);
                    Handled {
                        reply: None,
                        abuse: false,
                    }
                }
                Err(e) => refuse(tracker, "announce", e, &answer.info_hash),
            }
        }
        Request::Scrape(info_hashes) => {
            add(&metrics.scrapes, 1);
            let limit = tracker.config.limits.max_scrape_hashes;
            if info_hashes.len() > limit {
                metrics.reject(Rejection::InvalidMessage);
                return Handled {
                    reply: Some(reply::failure_text("scrape", "too many info_hash", None)),
                    abuse: true,
                };
            }
            let files = tracker.registry().scrape(&info_hashes, limit);
            Handled {
                reply: Some(reply::scrape(&files, interval)),
                abuse: false,
            }
        }
        Request::Have(have) => {
            let result = tracker.registry().have(conn, &have, now);
            match result {
                Ok(()) => Handled {
                    reply: None,
                    abuse: false,
                },
                Err(e) => refuse(tracker, "x_cs_have", e, &have.info_hash),
            }
        }
    }
}
