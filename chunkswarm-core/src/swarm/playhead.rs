//! Playheads: where each neighbour plays, so that uploads go first to the
//! playback that needs them soonest (see [`crate::wire::extension`] for the
//! `cs_playhead` message).
//!
//! We tell every neighbour that speaks `cs_playhead` where our playback is
//! when we connect, when it starts, stops or changes bitrate, and when it
//! drifts half a piece from where a steady playhead would be (a stall or a
//! seek). A neighbour's deadline for a piece is then its last report plus
//! the content ahead of the reported position at its bitrate. Pieces behind
//! its playhead, and everything a neighbour that does not play asks for,
//! have no deadline. A neighbour can only claim urgency for blocks it is
//! allowed to ask for, so a false playhead moves it up our queue and no
//! further than the unchoke it already has.

use bytes::Bytes;
use web_time::Instant;

use super::{PeerKey, Playback, Swarm};
use crate::wire::Message;
use crate::wire::extension::{ExtensionError, Playhead};

/// The extended id our peers send `cs_playhead` messages with.
pub(super) const LOCAL_PLAYHEAD_ID: u8 = 3;

/// A neighbour's playhead as it reported it.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeardPlayhead {
    playhead: Playhead,
    at: Instant,
}

impl HeardPlayhead {
    /// Where the neighbour's playback is now, if it plays: its report moved
    /// on at its bitrate.
    fn position(&self, now: Instant) -> Option<u64> {
        let Playhead { position, bitrate } = self.playhead;
        let played = now.saturating_duration_since(self.at).as_secs_f64() * bitrate as f64;
        (bitrate != 0).then(|| position.saturating_add(played as u64))
    }

    /// When the neighbour's playback reaches `offset`, or `None` if it does
    /// not play or is past it.
    pub(super) fn reaches(&self, offset: u64) -> Option<Instant> {
        let Playhead { position, bitrate } = self.playhead;
        let playback = Playback { position, bitrate };
        self.plays(offset)
            .then(|| playback.reaches(self.at, offset))
    }

    /// Whether the neighbour plays and has yet to reach `offset`: whether
    /// [`reaches`](Self::reaches) gives a time, which is later the later the
    /// offset.
    pub(super) fn plays(&self, offset: u64) -> bool {
        self.playhead.bitrate != 0 && offset >= self.playhead.position
    }
}

impl Swarm {
    /// A neighbour told us its playhead.
    pub(super) fn playhead_heard(
        &mut self,
        now: Instant,
        key: PeerKey,
        payload: &Bytes,
    ) -> Result<(), ExtensionError> {
        let playhead = Playhead::decode(payload)?;
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.playhead = Some(HeardPlayhead { playhead, at: now });
        }
        Ok(())
    }

    /// Where `key`'s playback is now, if it told us and plays.
    pub(super) fn neighbour_position(&self, now: Instant, key: PeerKey) -> Option<u64> {
        self.peers.get(&key)?.playhead?.position(now)
    }

    /// Our playhead as we tell it.
    fn own_playhead(&self) -> Playhead {
        let playback = self.playback.unwrap_or(Playback {
            position: 0,
            bitrate: 0,
        });
        Playhead {
            position: playback.position,
            bitrate: playback.bitrate,
        }
    }

    /// Tells one neighbour our playhead, if it speaks `cs_playhead` and we
    /// have played.
    pub(super) fn send_playhead(&mut self, now: Instant, key: PeerKey) {
        let Some(id) = self.peers.get(&key).and_then(|p| p.playhead_id) else {
            return;
        };
        if self.told_playhead.is_none() {
            return;
        }
        let payload = self.own_playhead().encode();
        self.send(now, key, &[Message::Extended { id, payload }]);
    }

    /// After a playback change: tells every neighbour our playhead if it
    /// started, stopped, changed bitrate or drifted half a piece from where
    /// the last report puts it.
    pub(super) fn maybe_report_playhead(&mut self, now: Instant) {
        let current = self.own_playhead();
        if let Some((told, at)) = self.told_playhead {
            let played = now.saturating_duration_since(at).as_secs_f64();
            let expected = told.position as f64 + told.bitrate as f64 * played;
            let drift = (expected - current.position as f64).abs();
            let half_piece = f64::from(self.layout.piece_length() / 2);
            if told.bitrate == current.bitrate && drift <= half_piece {
                return;
            }
        } else if current.bitrate == 0 {
            return;
        }
        self.told_playhead = Some((current, now));
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.send_playhead(now, key);
        }
    }
}
