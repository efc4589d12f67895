//! The BitTorrent peer wire protocol as a streaming, sans-IO codec.
//!
//! Covers BEP 3 (the handshake and the core messages), `port` from BEP 5,
//! the BEP 6 fast extension (`suggest`, `have all`, `have none`,
//! `reject request`, `allowed fast`) and BEP 10 `extended` messages, whose
//! payload the codec passes through uninterpreted; [`extension`] reads and
//! writes the payloads chunkswarm speaks (the extension handshake and the
//! `cs_origin` claim), and [`metadata`] the BEP 9 `ut_metadata` exchange of a
//! torrent's info dictionary. All integers are big-endian;
//! every message after the handshake is a `u32` length, an id byte and a
//! payload.
//!
//! # Feeding bytes
//!
//! A WebRTC data channel carries the wire as a byte stream: one wire message
//! may span several channel messages and one channel message may hold several
//! wire messages. The decoders therefore take bytes split anywhere:
//!
//! 1. A [`HandshakeDecoder`] reads the 68-byte [`Handshake`]. Feed it with
//!    [`extend`](HandshakeDecoder::extend) and call
//!    [`decode`](HandshakeDecoder::decode) until it returns the handshake
//!    together with a [`Decoder`] that already holds any bytes that followed.
//! 2. That [`Decoder`] yields [`Message`]s: after each
//!    [`extend`](Decoder::extend), call [`decode`](Decoder::decode) until it
//!    returns `Ok(None)`.
//!
//! Any error ([`DecodeError`]) means the peer broke the protocol: the decoder
//! is poisoned, so it cannot resynchronise into garbage, and the connection
//! should be closed.
//!
//! # What is bounded
//!
//! Every declared length is checked against [`DecoderLimits`] as soon as the
//! 4-byte length and the id byte have arrived, before the body is buffered
//! or any memory is reserved for it: a fixed-size message (`have`,
//! `request`, ...) must have exactly its length, a `piece` block, `bitfield`
//! or `extended` payload must be within its limit, and the block length named
//! by a `request`, `cancel` or `reject request` must be within the block
//! limit. Once every complete message has been decoded, a decoder holds less
//! than [`DecoderLimits::max_frame_len`] bytes. Unknown message ids are an
//! error, not skipped: every id outside this set needs an extension bit
//! chunkswarm never sets (extensions travel inside `extended` messages).
//!
//! The decoders never panic on any input. `bitfield`, `piece` and `extended`
//! payloads are split off the receive buffer as [`Bytes`](bytes::Bytes)
//! without a copy.
//!
//! # Example
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use chunkswarm_core::wire::{
//!     BlockRequest, DecoderLimits, Handshake, HandshakeDecoder, Message, Reserved,
//! };
//!
//! let handshake = Handshake {
//!     reserved: Reserved::NONE.with_fast(true),
//!     info_hash: [0xAB; 20],
//!     peer_id: *b"-CS0001-000000000001",
//! };
//! let sent = [
//!     Message::HaveAll,
//!     Message::Request(BlockRequest { index: 0, begin: 0, length: 16384 }),
//!     Message::Piece { index: 0, begin: 0, block: Bytes::from(vec![7; 16384]) },
//! ];
//! let mut wire = BytesMut::new();
//! handshake.encode(&mut wire);
//! for message in &sent {
//!     message.encode(&mut wire);
//! }
//!
//! // The stream arrives in three chunks, split inside the handshake and
//! // inside the header of the `piece`.
//! let (first, rest) = wire.split_at(30);
//! let (second, third) = rest.split_at(70);
//!
//! let mut handshaking = HandshakeDecoder::new(DecoderLimits::new().with_piece_count(40));
//! handshaking.extend(first);
//! assert!(handshaking.decode()?.is_none()); // more bytes needed
//! handshaking.extend(second);
//! let Some((received, mut decoder)) = handshaking.decode()? else {
//!     unreachable!("all 68 handshake bytes are in");
//! };
//! assert_eq!(received, handshake);
//! assert!(received.reserved.supports_fast());
//!
//! // `have all` and `request` are complete; the `piece` needs the third chunk.
//! let mut messages = Vec::new();
//! while let Some(message) = decoder.decode()? {
//!     messages.push(message);
//! }
//! assert_eq!(messages.len(), 2);
//! decoder.extend(third);
//! while let Some(message) = decoder.decode()? {
//!     messages.push(message);
//! }
//! assert_eq!(messages, sent);
//! assert_eq!(decoder.buffered_len(), 0);
//! # Ok::<(), chunkswarm_core::wire::DecodeError>(())
//! ```

mod decoder;
pub mod extension;
mod handshake;
mod limits;
mod message;
pub mod metadata;
#[cfg(test)]
mod tests;

pub use decoder::{DecodeError, Decoder, HandshakeDecoder};
pub use handshake::{HANDSHAKE_LEN, Handshake, HandshakeError, PROTOCOL, Reserved};
pub use limits::{BitfieldLen, DecoderLimits};
pub use message::{BlockRequest, Message, MessageId};
