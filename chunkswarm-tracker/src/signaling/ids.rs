//! The 20-byte ids of the WebTorrent protocol, from the protocol's one
//! implementation in `chunkswarm_core::tracker_protocol`.

pub(crate) use chunkswarm_core::tracker_protocol::BinaryId as Id20;

/// The id a peer announces itself with.
pub(crate) type PeerId = Id20;
/// The id an offerer gives one of its offers.
pub(crate) type OfferId = Id20;
