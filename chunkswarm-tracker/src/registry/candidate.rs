//! The members one introduction chooses among: the swarm's local peers and,
//! in a cluster, its members on other nodes, ranked by the same piece map.

use chunkswarm_core::piece_map::Bitfield;

use super::swarm::SwarmPeer;
use crate::cluster::RemoteMember;
use crate::introductions::{self, Holdings, Member};

/// A member of the swarm, here or on another node.
#[derive(Debug)]
pub(super) enum Candidate<'a> {
    Local(&'a SwarmPeer),
    /// A remote member and its bitfield, if it reported one of the swarm's
    /// piece count.
    Remote(&'a RemoteMember, Option<&'a Bitfield>),
}

impl Member for Candidate<'_> {
    fn holdings(&self) -> Holdings<'_> {
        match self {
            Self::Local(peer) => peer.holdings(),
            Self::Remote(member, _) if member.report.complete => Holdings::All,
            Self::Remote(_, Some(field)) => Holdings::Some(field),
            Self::Remote(_, None) => Holdings::Unknown,
        }
    }

    fn position(&self) -> Option<u32> {
        match self {
            Self::Local(peer) => peer.position(),
            Self::Remote(member, _) => member.report.position,
        }
    }

    fn fetch_key(&self) -> Option<u64> {
        match self {
            Self::Local(peer) => peer.fetch_key(),
            Self::Remote(member, _) => Some(introductions::facts::key_of(&member.peer_id.0)),
        }
    }

    fn can_take(&self) -> bool {
        match self {
            Self::Local(peer) => peer.can_take(),
            // Relayed through the cluster, whose queues are its own.
            Self::Remote(..) => true,
        }
    }
}

/// The bitfields of `remote`, where they match the swarm's `piece_count`.
pub(super) fn remote_fields(
    remote: &[RemoteMember],
    piece_count: Option<u32>,
) -> Vec<Option<Bitfield>> {
    remote
        .iter()
        .map(|member| {
            let (count, bytes) = member.report.pieces.as_ref()?;
            if Some(*count) != piece_count {
                return None;
            }
            Bitfield::from_bytes(bytes, *count).ok()
        })
        .collect()
}
