//! Serving the torrent's info dictionary to peers that ask for it (BEP 9
//! `ut_metadata`, see [`crate::wire::metadata`]): WebTorrent clients
//! opened from a magnet link join a swarm of chunkswarm peers this way.
//! Each connection may ask for every metadata piece a few times over;
//! beyond that its requests are rejected, so a peer cannot turn us into a
//! bandwidth amplifier.

use bytes::Bytes;
use web_time::Instant;

use super::{PeerKey, Swarm};
use crate::wire::Message;
use crate::wire::extension::ExtensionError;
use crate::wire::metadata::{METADATA_PIECE_LEN, MetadataMessage, metadata_piece};

/// The extended id our peers send `ut_metadata` messages with.
pub(super) const LOCAL_METADATA_ID: u8 = 2;

/// Requests answered per connection, in whole copies of the metadata.
const COPIES_PER_CONNECTION: u32 = 3;

impl Swarm {
    /// A `ut_metadata` message arrived.
    pub(super) fn metadata_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        payload: &Bytes,
    ) -> Result<(), ExtensionError> {
        let MetadataMessage::Request { piece } = MetadataMessage::decode(payload)? else {
            // Data or rejects: we hold the metadata and asked for none.
            return Ok(());
        };
        let info = self.info.encoded();
        let pieces = info.len().div_ceil(METADATA_PIECE_LEN) as u32;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        // Without the id it wants answers sent with, there is no answering.
        let Some(id) = peer.metadata_id else {
            return Ok(());
        };
        peer.metadata_requests = peer.metadata_requests.saturating_add(1);
        let reply = if peer.metadata_requests > pieces.saturating_mul(COPIES_PER_CONNECTION) {
            MetadataMessage::Reject { piece }
        } else {
            metadata_piece(info, piece)
        };
        let message = Message::Extended {
            id,
            payload: reply.encode(),
        };
        self.send(now, key, &[message]);
        Ok(())
    }
}
