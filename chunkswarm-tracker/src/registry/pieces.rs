//! The chunk registry proper: piece reports in, per-piece holders out.

use std::collections::HashMap;
use std::time::Instant;

use chunkswarm_core::layout::Layout;
use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::piece_map::Bitfield;
use serde::Serialize;

use super::RegistryError;
use super::swarm::Swarm;
use crate::cluster::RemoteMember;
use crate::signaling::ids::PeerId;

/// One swarm in `GET /api/swarms`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SwarmSummary {
    /// The info hash in hex.
    pub(crate) info_hash: String,
    /// Peers in the swarm.
    pub(crate) peers: usize,
    /// Peers holding everything.
    pub(crate) seeders: u32,
    /// Peers still downloading.
    pub(crate) leechers: u32,
    /// `completed` events seen.
    pub(crate) downloaded: u64,
    /// Pieces of the content, if known.
    pub(crate) piece_count: Option<u32>,
}

/// `GET /api/swarms/{info_hash}/pieces`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PieceReport {
    /// The info hash in hex.
    pub(crate) info_hash: String,
    /// Pieces of the content, if known.
    pub(crate) piece_count: Option<u32>,
    /// The swarm's peers; `holders` below are indices into this list.
    pub(crate) peers: Vec<PeerPieces>,
    /// One entry per piece, in order.
    pub(crate) pieces: Vec<PieceHolders>,
}

/// A peer in a [`PieceReport`].
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PeerPieces {
    /// The peer id in hex.
    pub(crate) peer_id: String,
    /// Holds every piece.
    pub(crate) seeder: bool,
    /// Pieces it is known to hold.
    pub(crate) pieces: u32,
}

/// One piece in a [`PieceReport`].
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PieceHolders {
    /// The piece index.
    pub(crate) index: u32,
    /// Peers known to hold it.
    pub(crate) count: u32,
    /// Which peers: indices into [`PieceReport::peers`].
    pub(crate) holders: Vec<u32>,
}

/// Adds members of other nodes to a node's report (or makes one of them
/// alone): their peers, and the pieces of those whose bitfield has the
/// report's piece count.
pub(crate) fn add_remote(
    info_hash: &InfoHash,
    report: Option<PieceReport>,
    members: &[RemoteMember],
) -> Option<PieceReport> {
    if report.is_none() && members.is_empty() {
        return None;
    }
    let mut report = report.unwrap_or_else(|| {
        let piece_count = members
            .iter()
            .find_map(|m| m.report.pieces.as_ref().map(|(count, _)| *count));
        PieceReport {
            info_hash: info_hash.to_hex(),
            piece_count,
            peers: Vec::new(),
            pieces: (0..piece_count.unwrap_or(0))
                .map(|index| PieceHolders {
                    index,
                    count: 0,
                    holders: Vec::new(),
                })
                .collect(),
        }
    });
    let piece_count = report.piece_count.unwrap_or(0);
    for member in members {
        let holder = report.peers.len() as u32;
        let field = member
            .report
            .pieces
            .as_ref()
            .filter(|(count, _)| *count == piece_count)
            .and_then(|(count, bytes)| Bitfield::from_bytes(bytes, *count).ok());
        let held: Vec<u32> = match (&field, member.report.complete) {
            (_, true) => (0..piece_count).collect(),
            (Some(field), false) => field.iter_ones().map(|i| i.get()).collect(),
            (None, false) => Vec::new(),
        };
        report.peers.push(PeerPieces {
            peer_id: member.peer_id.to_hex(),
            seeder: member.report.complete,
            pieces: held.len() as u32,
        });
        for index in held {
            if let Some(entry) = report.pieces.get_mut(index as usize) {
                entry.count += 1;
                entry.holders.push(holder);
            }
        }
    }
    Some(report)
}

/// A [`Layout`] with one-byte pieces: the way to name piece `i` of `count`.
fn index_space(count: u32) -> Option<Layout> {
    Layout::new(u64::from(count), 1).ok()
}

/// Applies a peer's `x_cs_bitfield`. `claimed` is its `x_cs_pieces`.
pub(super) fn report_bitfield(
    swarm: &mut Swarm,
    peer_id: &PeerId,
    bytes: &[u8],
    claimed: Option<u32>,
) -> Result<(), RegistryError> {
    let count = match (swarm.piece_count, claimed) {
        (Some(known), Some(claimed)) if known != claimed => return Err(RegistryError::BadPieces),
        (Some(count), _) | (None, Some(count)) => count,
        (None, None) => return Err(RegistryError::BadPieces),
    };
    if count == 0 {
        return Err(RegistryError::BadPieces);
    }
    let field = Bitfield::from_bytes(bytes, count).map_err(|_| RegistryError::BadPieces)?;
    swarm.piece_count = Some(count);
    let full = field.is_full();
    let peer = swarm.get_mut(peer_id).ok_or(RegistryError::NotInSwarm)?;
    if peer.complete {
        return Ok(());
    }
    peer.pieces = Some(field);
    if full {
        swarm.set_complete(peer_id, false);
    }
    Ok(())
}

/// Applies an `x_cs_have`: every index must be below the piece count.
pub(super) fn report_have(
    swarm: &mut Swarm,
    peer_id: &PeerId,
    pieces: &[u32],
    now: Instant,
) -> Result<(), RegistryError> {
    let count = swarm.piece_count.ok_or(RegistryError::BadPieces)?;
    let space = index_space(count).ok_or(RegistryError::BadPieces)?;
    let indices: Option<Vec<_>> = pieces.iter().map(|&i| space.piece(i)).collect();
    let indices = indices.ok_or(RegistryError::BadPieces)?;
    let peer = swarm.get_mut(peer_id).ok_or(RegistryError::NotInSwarm)?;
    peer.last_seen = now;
    if peer.complete {
        return Ok(());
    }
    let field = peer.pieces.get_or_insert_with(|| Bitfield::new(count));
    for index in indices {
        field.insert(index);
    }
    if field.is_full() {
        swarm.set_complete(peer_id, false);
    }
    Ok(())
}

pub(super) fn summaries(swarms: &HashMap<InfoHash, Swarm>, limit: usize) -> Vec<SwarmSummary> {
    let mut all: Vec<(&InfoHash, &Swarm)> = swarms.iter().collect();
    all.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    all.into_iter()
        .take(limit)
        .map(|(info_hash, swarm)| {
            let counts = swarm.counts();
            SwarmSummary {
                info_hash: info_hash.to_hex(),
                peers: swarm.len(),
                seeders: counts.complete,
                leechers: counts.incomplete,
                downloaded: counts.downloaded,
                piece_count: swarm.piece_count,
            }
        })
        .collect()
}

pub(super) fn report(info_hash: &InfoHash, swarm: &Swarm) -> PieceReport {
    let piece_count = swarm.piece_count;
    let peers: Vec<PeerPieces> = swarm
        .peers()
        .iter()
        .map(|p| PeerPieces {
            peer_id: p.peer_id.to_hex(),
            seeder: p.complete,
            pieces: p.held(piece_count),
        })
        .collect();
    let mut pieces: Vec<PieceHolders> = (0..piece_count.unwrap_or(0))
        .map(|index| PieceHolders {
            index,
            count: 0,
            holders: Vec::new(),
        })
        .collect();
    for (holder, peer) in (0u32..).zip(swarm.peers()) {
        let mut add = |index: u32| {
            if let Some(entry) = pieces.get_mut(index as usize) {
                entry.count += 1;
                entry.holders.push(holder);
            }
        };
        match (&peer.pieces, peer.complete) {
            (_, true) => (0..piece_count.unwrap_or(0)).for_each(&mut add),
            (Some(field), false) => field.iter_ones().for_each(|i| add(i.get())),
            (None, false) => {}
        }
    }
    PieceReport {
        info_hash: info_hash.to_hex(),
        piece_count,
        peers,
        pieces,
    }
}
