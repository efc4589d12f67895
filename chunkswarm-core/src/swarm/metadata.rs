//! Serving the torrent's info dictionary to peers that ask for it (BEP 9
//! `ut_metadata`, see [`crate::wire::metadata`]): WebTorrent clients
//! opened from a magnet link join a swarm of chunkswarm peers this way.
//! Each connection has a budget of metadata bytes, a token bucket: it may
//! take a few whole copies at once ([`BURST_COPIES`]), then
//! [`METADATA_RATE`] bytes per second; a request beyond it is rejected
//! (BEP 9 `reject`), not answered and not punished, so a peer cannot turn
//! us into a bandwidth amplifier and an honest one asking again later is
//! served.

use bytes::Bytes;
use web_time::Instant;

use super::{PeerKey, Swarm};
use crate::rate::TokenBucket;
use crate::wire::Message;
use crate::wire::extension::ExtensionError;
use crate::wire::metadata::{MetadataMessage, metadata_piece};

/// The extended id our peers send `ut_metadata` messages with.
pub(super) const LOCAL_METADATA_ID: u8 = 2;

/// Whole copies of the metadata a connection may take at once.
pub(super) const BURST_COPIES: u64 = 3;

/// Metadata bytes per second a connection earns back once its burst is
/// spent: a 16 KiB metadata piece every 8 s.
pub(super) const METADATA_RATE: u64 = 2 * 1024;

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
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        // Without the id it wants answers sent with, there is no answering.
        let Some(id) = peer.metadata_id else {
            return Ok(());
        };
        let burst = (info.len() as u64).saturating_mul(BURST_COPIES);
        let budget = peer
            .metadata_budget
            .get_or_insert_with(|| TokenBucket::new(METADATA_RATE, burst));
        let reply = match metadata_piece(info, piece) {
            MetadataMessage::Data { data, .. } if !budget.try_take(now, data.len() as u64) => {
                MetadataMessage::Reject { piece }
            }
            reply => reply,
        };
        let message = Message::Extended {
            id,
            payload: reply.encode(),
        };
        self.send(now, key, &[message]);
        Ok(())
    }
}
