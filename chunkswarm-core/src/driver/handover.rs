//! The switch from a magnet link's metadata fetch to its download: the
//! parked torrent's connections go to the new swarm as they are
//! ([`Swarm::admit_peer`]), so the download starts at once on the peers
//! that gave the metadata, without new offers, and the tracker hears no
//! second `started`. The peers the fetch banned stay banned.

use web_time::Instant;

use super::engine::Engine;
use super::machine::Machine;
use crate::swarm::{Event, Swarm};

impl Machine {
    /// Starts `swarm` in place of its torrent's finished metadata fetch,
    /// on the fetch's connections. The caller checked that the torrent is
    /// parked ([`Machine::can_add`]).
    pub(super) fn take_over_parked(&mut self, now: Instant, swarm: Swarm) {
        let info_hash = swarm.info().info_hash();
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if !torrent.engine.is_parked() {
            return;
        }
        let parked = std::mem::replace(&mut torrent.engine, Engine::Swarm(Box::new(swarm)));
        let (Engine::Metadata(fetch), Engine::Swarm(swarm)) = (parked, &mut torrent.engine) else {
            return;
        };
        let banned: Vec<[u8; 20]> = fetch.banned().copied().collect();
        for peer_id in banned {
            swarm.ban_peer_id(now, peer_id);
        }
        let handed = fetch.into_handover();
        tracing::info!(
            %info_hash,
            pieces = swarm.have().count_ones(),
            peers = handed.len(),
            "torrent added on the metadata fetch's connections"
        );
        for (peer, handover) in handed {
            swarm.admit_peer(now, peer, handover);
        }
        // The tracker has the membership of the fetch's `started`: what
        // the store already holds goes to it as haves.
        torrent
            .new_haves
            .extend(swarm.have().iter_ones().map(|p| p.get()));
        if swarm.is_complete() {
            torrent.completed_announced = true;
            self.announce_completed(now, info_hash);
            self.publish(info_hash, Event::Completed);
        }
        // As for any torrent added: subscribers hear the tracker's state.
        self.tell_tracker_news(now, info_hash);
    }
}
