//! The streaming decoders: [`HandshakeDecoder`] first, then [`Decoder`].

use std::mem;

use bytes::{Buf, Bytes, BytesMut};

use super::handshake::{self, HANDSHAKE_LEN, Handshake, HandshakeError};
use super::limits::{DecoderLimits, fixed_len};
use super::message::{BlockRequest, LEN_PREFIX, Message, MessageId};

/// Length prefix plus id byte: what must arrive before a message is checked.
const FRAME_HEADER: usize = LEN_PREFIX + 1;

/// Why a peer's byte stream cannot be decoded. Each is a protocol violation
/// by the peer (or, for [`Poisoned`](Self::Poisoned) and
/// [`AlreadyDecoded`](Self::AlreadyDecoded), a call after the decoder is
/// spent); the connection should be closed.
///
/// Lengths named `len` are declared message lengths, which count the id byte
/// but not the 4-byte prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stream does not start with a BitTorrent handshake.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A message id outside the set chunkswarm speaks (BEP 3, 5, 6, 10).
    /// Every other id needs an extension bit that chunkswarm never sets, so
    /// a peer sending one is broken or not a BitTorrent peer.
    #[error("unknown message id {id} (declared length {len})")]
    UnknownId {
        /// The id byte.
        id: u8,
        /// The declared length.
        len: u32,
    },
    /// A fixed-size message declares another length.
    #[error("{id} message declares length {len}, but it is always {expected}")]
    WrongLength {
        /// The message kind.
        id: MessageId,
        /// The declared length.
        len: u32,
        /// The only valid length.
        expected: u32,
    },
    /// A variable-size message declares a length shorter than its fixed fields.
    #[error("{id} message declares length {len}, shorter than its minimum {min}")]
    TooShort {
        /// The message kind.
        id: MessageId,
        /// The declared length.
        len: u32,
        /// The shortest valid length.
        min: u32,
    },
    /// A `bitfield`, `piece` block or `extended` payload longer than its
    /// [limit](DecoderLimits), detected before any of it is buffered.
    #[error("{id} message declares a payload of {payload_len} bytes, more than the limit {max}")]
    TooLong {
        /// The message kind.
        id: MessageId,
        /// The declared payload length: bitfield bytes, block bytes, or
        /// extended payload bytes after the extended id.
        payload_len: u32,
        /// The limit for this kind.
        max: u32,
    },
    /// A `bitfield` whose length is not `ceil(pieces / 8)`
    /// ([`BitfieldLen::Exactly`](super::BitfieldLen::Exactly)).
    #[error("bitfield of {len} bytes, but the torrent needs exactly {expected}")]
    BitfieldLength {
        /// The declared payload length in bytes.
        len: u32,
        /// The required length in bytes.
        expected: u32,
    },
    /// A `request`, `cancel` or `reject request` names a block longer than
    /// [`max_block_len`](DecoderLimits::max_block_len).
    #[error("{id} names a block of {length} bytes, more than the limit {max}")]
    BlockTooLong {
        /// The message kind.
        id: MessageId,
        /// The block length named.
        length: u32,
        /// The limit.
        max: u32,
    },
    /// A message within the limits, but too large to buffer on this
    /// platform (a limit near 4 GiB on a 32-bit target).
    #[error("{id} message of declared length {len} cannot be buffered on this platform")]
    TooLargeForPlatform {
        /// The message kind.
        id: MessageId,
        /// The declared length.
        len: u32,
    },
    /// An earlier call returned an error; the stream cannot be resynchronised.
    #[error("the decoder failed earlier and accepts no more input")]
    Poisoned,
    /// The handshake was already returned, together with the [`Decoder`]
    /// that holds the rest of the stream.
    #[error("the handshake was already decoded; decode messages with the Decoder it returned")]
    AlreadyDecoded,
}

/// What a [`HandshakeDecoder`] is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandshakeState {
    Reading,
    Done,
    Poisoned,
}

/// The first stage of a connection's inbound stream: buffers bytes until the
/// 68-byte handshake is complete, then hands everything after it to a
/// [`Decoder`].
///
/// The length byte and the protocol string are checked byte by byte as they
/// arrive, so a stream that is not BitTorrent fails at its first wrong byte.
/// While reading, the decoder holds at most [`HANDSHAKE_LEN`] bytes plus
/// whatever the last [`extend`](Self::extend) brought beyond them.
#[derive(Debug)]
pub struct HandshakeDecoder {
    buf: BytesMut,
    limits: DecoderLimits,
    state: HandshakeState,
}

impl HandshakeDecoder {
    /// A decoder expecting a handshake; the [`Decoder`] it returns uses `limits`.
    pub fn new(limits: DecoderLimits) -> Self {
        Self {
            buf: BytesMut::with_capacity(HANDSHAKE_LEN),
            limits,
            state: HandshakeState::Reading,
        }
    }

    /// Appends bytes as they arrived from the transport, split anywhere.
    ///
    /// Ignored once the decoder has failed or returned the handshake.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.state == HandshakeState::Reading {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The number of bytes held and not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The bytes held and not yet decoded, for handing the stream to
    /// another decoder with other limits. Empty once the handshake was
    /// returned (its [`Decoder`] holds the rest) or after an error.
    pub fn into_unread(self) -> Bytes {
        self.buf.freeze()
    }

    /// Returns the handshake once all 68 bytes have arrived, with the
    /// [`Decoder`] for the messages that follow; it already holds any bytes
    /// that arrived after the handshake. `Ok(None)` means more bytes are needed.
    ///
    /// Returns [`DecodeError::Handshake`] at the first wrong byte of the length
    /// byte or protocol string; after any error every later call returns
    /// [`DecodeError::Poisoned`]. After the handshake has been returned,
    /// later calls return [`DecodeError::AlreadyDecoded`].
    pub fn decode(&mut self) -> Result<Option<(Handshake, Decoder)>, DecodeError> {
        match self.state {
            HandshakeState::Reading => {}
            HandshakeState::Done => return Err(DecodeError::AlreadyDecoded),
            HandshakeState::Poisoned => return Err(DecodeError::Poisoned),
        }
        let parsed = match self.buf.first_chunk::<HANDSHAKE_LEN>() {
            Some(bytes) => Handshake::parse(bytes).map(Some),
            None => handshake::check_prefix(&self.buf).map(|()| None),
        };
        match parsed {
            Ok(None) => Ok(None),
            Ok(Some(handshake)) => {
                self.buf.advance(HANDSHAKE_LEN);
                self.state = HandshakeState::Done;
                let rest = mem::take(&mut self.buf);
                Ok(Some((handshake, Decoder::with_buffer(self.limits, rest))))
            }
            Err(err) => {
                self.state = HandshakeState::Poisoned;
                self.buf = BytesMut::new();
                Err(err.into())
            }
        }
    }
}

impl Default for HandshakeDecoder {
    /// A decoder expecting a handshake, with default limits.
    fn default() -> Self {
        Self::new(DecoderLimits::default())
    }
}

/// Decodes peer wire messages from a byte stream split anywhere.
///
/// Feed bytes with [`extend`](Self::extend) as they arrive, then call
/// [`decode`](Self::decode) until it returns `Ok(None)`. Each message's
/// length prefix and id are checked against the [`DecoderLimits`] as soon as
/// those 5 bytes are in, so once every complete message is decoded the
/// buffer holds less than [`DecoderLimits::max_frame_len`] bytes.
///
/// After an error the decoder is poisoned: it drops its buffer, ignores
/// further input and every later [`decode`](Self::decode) returns
/// [`DecodeError::Poisoned`].
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    limits: DecoderLimits,
    poisoned: bool,
}

impl Decoder {
    /// A decoder for a stream whose handshake was already dealt with; normally
    /// [`HandshakeDecoder::decode`] returns the decoder instead.
    pub fn new(limits: DecoderLimits) -> Self {
        Self::with_buffer(limits, BytesMut::new())
    }

    fn with_buffer(limits: DecoderLimits, buf: BytesMut) -> Self {
        Self {
            buf,
            limits,
            poisoned: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &DecoderLimits {
        &self.limits
    }

    /// Appends bytes as they arrived from the transport, split anywhere.
    ///
    /// Ignored once the decoder is poisoned.
    pub fn extend(&mut self, bytes: &[u8]) {
        if !self.poisoned {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The number of bytes held and not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether an earlier error has ended decoding.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The bytes held and not yet decoded (the start of a message still
    /// arriving), for handing the stream to another decoder: one with other
    /// limits once the torrent is known. Empty once poisoned.
    pub fn into_unread(self) -> Bytes {
        self.buf.freeze()
    }

    /// The next complete message, or `Ok(None)` if more bytes are needed.
    ///
    /// `bitfield`, `piece` and `extended` payloads are split off the buffer
    /// without copying.
    pub fn decode(&mut self) -> Result<Option<Message>, DecodeError> {
        if self.poisoned {
            return Err(DecodeError::Poisoned);
        }
        let decoded = self.decode_frame();
        if decoded.is_err() {
            self.poisoned = true;
            self.buf = BytesMut::new();
        }
        decoded
    }

    fn decode_frame(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some(prefix) = self.buf.first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix);
        if len == 0 {
            self.buf.advance(LEN_PREFIX);
            return Ok(Some(Message::KeepAlive));
        }
        let Some(&id) = self.buf.get(LEN_PREFIX) else {
            return Ok(None);
        };
        let id = self.limits.check_header(id, len)?;
        // `len >= 1`, so `total >= FRAME_HEADER`.
        let Some(total) = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(LEN_PREFIX))
        else {
            return Err(DecodeError::TooLargeForPlatform { id, len });
        };
        if let Some(missing) = total.checked_sub(self.buf.len()).filter(|&n| n > 0) {
            self.buf.reserve(missing);
            return Ok(None);
        }
        let mut frame = self.buf.split_to(total);
        frame.advance(FRAME_HEADER);
        let body = frame.freeze();
        parse_body(id, body, &self.limits)
            .unwrap_or(Err(DecodeError::TooShort {
                id,
                len,
                min: fixed_len(id),
            }))
            .map(Some)
    }
}

impl Default for Decoder {
    /// A decoder for messages (no handshake expected), with default limits.
    fn default() -> Self {
        Self::new(DecoderLimits::default())
    }
}

/// Reads big-endian fields off the front of a message body.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn u16(&mut self) -> Option<u16> {
        let (head, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(u16::from_be_bytes(*head))
    }

    fn block_request(&mut self) -> Option<BlockRequest> {
        Some(BlockRequest {
            index: self.u32()?,
            begin: self.u32()?,
            length: self.u32()?,
        })
    }
}

/// Parses the body (after the id byte) of a message whose declared length
/// [`DecoderLimits::check_header`] accepted. `None` if the body is shorter
/// than the message's fixed fields, which that check rules out.
fn parse_body(
    id: MessageId,
    mut body: Bytes,
    limits: &DecoderLimits,
) -> Option<Result<Message, DecodeError>> {
    let mut fields = Fields(&body);
    let message = match id {
        MessageId::Choke => Message::Choke,
        MessageId::Unchoke => Message::Unchoke,
        MessageId::Interested => Message::Interested,
        MessageId::NotInterested => Message::NotInterested,
        MessageId::HaveAll => Message::HaveAll,
        MessageId::HaveNone => Message::HaveNone,
        MessageId::Have => Message::Have {
            piece: fields.u32()?,
        },
        MessageId::Suggest => Message::Suggest {
            piece: fields.u32()?,
        },
        MessageId::AllowedFast => Message::AllowedFast {
            piece: fields.u32()?,
        },
        MessageId::Port => Message::Port(fields.u16()?),
        MessageId::Request | MessageId::Cancel | MessageId::RejectRequest => {
            let request = fields.block_request()?;
            if request.length > limits.max_block_len {
                return Some(Err(DecodeError::BlockTooLong {
                    id,
                    length: request.length,
                    max: limits.max_block_len,
                }));
            }
            match id {
                MessageId::Request => Message::Request(request),
                MessageId::Cancel => Message::Cancel(request),
                _ => Message::RejectRequest(request),
            }
        }
        MessageId::Bitfield => Message::Bitfield(body),
        MessageId::Piece => {
            let index = fields.u32()?;
            let begin = fields.u32()?;
            body.advance(8);
            Message::Piece {
                index,
                begin,
                block: body,
            }
        }
        MessageId::Extended => {
            let (&ext, _) = body.split_first()?;
            body.advance(1);
            Message::Extended {
                id: ext,
                payload: body,
            }
        }
    };
    Some(Ok(message))
}
