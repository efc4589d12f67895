//! Property tests of the peer wire codec: round trips under any split,
//! garbage never panics or overgrows the buffer, and bounds are enforced
//! from the header alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use chunkswarm_core::wire::{
    BitfieldLen, BlockRequest, DecodeError, Decoder, DecoderLimits, HANDSHAKE_LEN, Handshake,
    HandshakeDecoder, Message, MessageId, Reserved,
};
use proptest::prelude::*;

const BLOCK: usize = 16 * 1024;

/// A payload of `len` bytes that is cheap to generate and not all one value.
fn payload(max: usize) -> impl Strategy<Value = Bytes> {
    (0..=max, any::<u8>()).prop_map(|(len, seed)| {
        Bytes::from(
            (0..len)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect::<Vec<_>>(),
        )
    })
}

/// Mostly 16 KiB-or-less blocks, sometimes anything up to `max`.
fn block(max: usize) -> impl Strategy<Value = Bytes> {
    prop_oneof![9 => payload(BLOCK), 1 => payload(max)]
}

fn block_request(max_len: u32) -> impl Strategy<Value = BlockRequest> {
    (any::<u32>(), any::<u32>(), 0..=max_len).prop_map(|(index, begin, length)| BlockRequest {
        index,
        begin,
        length,
    })
}

/// Any message the decoder accepts under `limits` (with an `AtMost` bitfield).
fn message(limits: DecoderLimits) -> impl Strategy<Value = Message> {
    let max_block = limits.max_block_len as usize;
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        any::<u32>().prop_map(|piece| Message::Have { piece }),
        payload(limits.bitfield_len.max().min(4096) as usize).prop_map(Message::Bitfield),
        block_request(limits.max_block_len).prop_map(Message::Request),
        (any::<u32>(), any::<u32>(), block(max_block)).prop_map(|(index, begin, block)| {
            Message::Piece {
                index,
                begin,
                block,
            }
        }),
        block_request(limits.max_block_len).prop_map(Message::Cancel),
        any::<u16>().prop_map(Message::Port),
        any::<u32>().prop_map(|piece| Message::Suggest { piece }),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        block_request(limits.max_block_len).prop_map(Message::RejectRequest),
        any::<u32>().prop_map(|piece| Message::AllowedFast { piece }),
        (any::<u8>(), payload(2048)).prop_map(|(id, payload)| Message::Extended { id, payload }),
    ]
}

fn handshake() -> impl Strategy<Value = Handshake> {
    (any::<[u8; 8]>(), any::<[u8; 20]>(), any::<[u8; 20]>()).prop_map(
        |(reserved, info_hash, peer_id)| Handshake {
            reserved: Reserved::from_bytes(reserved),
            info_hash,
            peer_id,
        },
    )
}

/// Chunk sizes, used in turn: empty chunks, single bytes, small and large.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![
            Just(0usize),
            Just(1usize),
            1..8usize,
            1..100usize,
            1..40_000usize,
        ],
        1..16,
    )
}

/// Cuts `bytes` into chunks of the given sizes, cycling through them; an
/// empty chunk is yielded but never loops forever.
fn split<'a>(bytes: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = bytes;
    let mut turn = 0;
    let mut empty_in_a_row = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = sizes.get(turn % sizes.len().max(1)).copied().unwrap_or(1);
        turn += 1;
        if size == 0 {
            empty_in_a_row += 1;
            if empty_in_a_row > sizes.len() {
                size = 1;
            }
        }
        if size > 0 {
            empty_in_a_row = 0;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}

/// What feeding a stream produced.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    handshake: Option<Handshake>,
    messages: Vec<Message>,
    error: Option<DecodeError>,
}

/// Either decoder, so one driver covers both stages.
enum Stage {
    Handshake(HandshakeDecoder),
    Messages(Decoder),
}

/// Feeds `chunks` to a decoder (starting with a handshake if `handshake_first`)
/// and decodes after every chunk, checking the invariants on the way:
/// the buffer stays below the largest frame, what was consumed re-encodes to
/// exactly the bytes fed, and after an error the decoder stays poisoned.
fn drive<'a>(
    limits: DecoderLimits,
    handshake_first: bool,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let mut stage = if handshake_first {
        Stage::Handshake(HandshakeDecoder::new(limits))
    } else {
        Stage::Messages(Decoder::new(limits))
    };
    let mut outcome = Outcome::default();
    let mut fed = Vec::new();
    for chunk in chunks {
        fed.extend_from_slice(chunk);
        match &mut stage {
            Stage::Handshake(d) => d.extend(chunk),
            Stage::Messages(d) => d.extend(chunk),
        }
        loop {
            match &mut stage {
                Stage::Handshake(d) => match d.decode() {
                    Ok(None) => {
                        assert!(d.buffered_len() < HANDSHAKE_LEN);
                        break;
                    }
                    Ok(Some((handshake, decoder))) => {
                        outcome.handshake = Some(handshake);
                        stage = Stage::Messages(decoder);
                    }
                    Err(err) => {
                        assert!(matches!(d.decode(), Err(DecodeError::Poisoned)));
                        outcome.error = Some(err);
                        break;
                    }
                },
                Stage::Messages(d) => match d.decode() {
                    Ok(None) => {
                        assert!(d.buffered_len() < limits.max_frame_len());
                        break;
                    }
                    Ok(Some(message)) => outcome.messages.push(message),
                    Err(err) => {
                        assert!(d.is_poisoned());
                        assert_eq!(d.decode(), Err(DecodeError::Poisoned));
                        outcome.error = Some(err);
                        break;
                    }
                },
            }
        }
        if outcome.error.is_some() {
            break;
        }
    }
    // Decoding is the exact inverse of encoding on the bytes consumed.
    let mut consumed = BytesMut::new();
    if let Some(handshake) = &outcome.handshake {
        handshake.encode(&mut consumed);
    }
    for message in &outcome.messages {
        message.encode(&mut consumed);
    }
    if outcome.error.is_none() {
        let buffered = match &stage {
            Stage::Handshake(d) => d.buffered_len(),
            Stage::Messages(d) => d.buffered_len(),
        };
        assert_eq!(consumed.len() + buffered, fed.len());
    }
    assert!(
        fed.starts_with(&consumed),
        "decoded messages re-encode to the input"
    );
    outcome
}

/// Small limits, so that random bytes reach every bound.
fn small_limits() -> impl Strategy<Value = DecoderLimits> {
    (
        0..=64u32,
        prop_oneof![
            (0..=16u32).prop_map(BitfieldLen::AtMost),
            (0..=16u32).prop_map(BitfieldLen::Exactly)
        ],
        0..=32u32,
    )
        .prop_map(|(max_block_len, bitfield_len, max_extended_len)| {
            let mut limits = DecoderLimits::default();
            limits.max_block_len = max_block_len;
            limits.bitfield_len = bitfield_len;
            limits.max_extended_len = max_extended_len;
            limits
        })
}

/// Bytes that look like frames: small length prefixes, ids in and around
/// the known set, bodies of any length, so that garbage gets past the header.
fn frame_like_garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            prop_oneof![0..=20u32, any::<u32>()],
            0..=22u8,
            prop::collection::vec(any::<u8>(), 0..24),
        ),
        0..24,
    )
    .prop_map(|frames| {
        let mut bytes = Vec::new();
        for (len, id, body) in frames {
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.push(id);
            bytes.extend_from_slice(&body);
        }
        bytes
    })
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        frame_like_garbage(),
    ]
}

fn any_limits() -> impl Strategy<Value = DecoderLimits> {
    prop_oneof![Just(DecoderLimits::default()), small_limits()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// (a) Any messages after any handshake, split anywhere, decode to
    /// exactly what was sent.
    #[test]
    fn round_trip_under_any_split(
        hs in handshake(),
        messages in prop::collection::vec(message(DecoderLimits::default()), 0..24),
        sizes in chunk_sizes(),
    ) {
        let mut wire = BytesMut::new();
        hs.encode(&mut wire);
        for message in &messages {
            message.encode(&mut wire);
        }
        let outcome = drive(DecoderLimits::default(), true, split(&wire, &sizes));
        prop_assert_eq!(outcome, Outcome { handshake: Some(hs), messages, error: None });
    }

    /// (a) The same with limits set to exactly what the messages use.
    #[test]
    fn round_trip_at_the_limits(
        limits in small_limits(),
        seed in prop::collection::vec(any::<u8>(), 0..8),
        sizes in chunk_sizes(),
    ) {
        let max_block = limits.max_block_len as usize;
        let bitfield = limits.bitfield_len.max() as usize;
        let ext = limits.max_extended_len as usize;
        let mut messages = vec![
            Message::Bitfield(Bytes::from(vec![0xA5; bitfield])),
            Message::Piece { index: 1, begin: 2, block: Bytes::from(vec![3; max_block]) },
            Message::Request(BlockRequest { index: 1, begin: 0, length: limits.max_block_len }),
            Message::Extended { id: 9, payload: Bytes::from(vec![4; ext]) },
        ];
        messages.extend(seed.iter().map(|&piece| Message::Have { piece: piece.into() }));
        let mut wire = BytesMut::new();
        for message in &messages {
            message.encode(&mut wire);
        }
        let outcome = drive(limits, false, split(&wire, &sizes));
        prop_assert_eq!(outcome, Outcome { handshake: None, messages, error: None });
    }

    /// (b) Random bytes never panic, never overgrow the buffer, and give the
    /// same result however they are split.
    #[test]
    fn garbage_is_handled(
        limits in any_limits(),
        handshake_first in any::<bool>(),
        garbage in garbage(),
        sizes in chunk_sizes(),
    ) {
        let split_up = drive(limits, handshake_first, split(&garbage, &sizes));
        let at_once = drive(limits, handshake_first, [garbage.as_slice()]);
        prop_assert_eq!(split_up, at_once);
    }

    /// (b) Garbage after valid messages: the valid ones still come out first.
    #[test]
    fn garbage_after_valid_messages(
        limits in any_limits(),
        messages in prop::collection::vec(message(DecoderLimits::default()), 0..8),
        garbage in garbage(),
        sizes in chunk_sizes(),
    ) {
        let messages: Vec<_> = messages.into_iter().filter(|m| fits(m, &limits)).collect();
        let mut wire = BytesMut::new();
        for message in &messages {
            message.encode(&mut wire);
        }
        wire.extend_from_slice(&garbage);
        let outcome = drive(limits, false, split(&wire, &sizes));
        prop_assert!(outcome.messages.starts_with(&messages));
        prop_assert_eq!(outcome, drive(limits, false, [&wire[..]]));
    }

    /// (b) Valid streams with random bytes changed.
    #[test]
    fn mutated_streams(
        limits in any_limits(),
        hs in handshake(),
        handshake_first in any::<bool>(),
        messages in prop::collection::vec(message(DecoderLimits::default()), 1..12),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        sizes in chunk_sizes(),
    ) {
        let mut wire = BytesMut::new();
        if handshake_first {
            hs.encode(&mut wire);
        }
        for message in &messages {
            message.encode(&mut wire);
        }
        for (at, byte) in mutations {
            let i = at.index(wire.len());
            wire[i] ^= byte;
        }
        let outcome = drive(limits, handshake_first, split(&wire, &sizes));
        prop_assert_eq!(outcome, drive(limits, handshake_first, [&wire[..]]));
    }

    /// (c) A declared length over the bound fails as soon as the length and
    /// id are in, whatever part of the body follows.
    #[test]
    fn over_the_bound_fails_before_the_body(
        limits in any_limits(),
        kind in prop::sample::select(vec![MessageId::Bitfield, MessageId::Piece, MessageId::Extended]),
        excess in prop_oneof![1..=16u32, any::<u32>()],
        body_part in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let (header, max) = match kind {
            MessageId::Bitfield => (1u32, limits.bitfield_len.max()),
            MessageId::Piece => (9, limits.max_block_len),
            _ => (2, limits.max_extended_len),
        };
        let declared = u64::from(header) + u64::from(max) + u64::from(excess);
        let declared = u32::try_from(declared).unwrap_or(u32::MAX);
        prop_assume!(u64::from(declared) > u64::from(header) + u64::from(max));

        let mut decoder = Decoder::new(limits);
        decoder.extend(&declared.to_be_bytes());
        prop_assert_eq!(decoder.decode(), Ok(None));
        decoder.extend(&[kind.as_u8()]);
        decoder.extend(&body_part);
        let err = decoder.decode();
        prop_assert!(
            matches!(
                err,
                Err(DecodeError::TooLong { .. } | DecodeError::BitfieldLength { .. })
            ),
            "{:?}", err
        );
        prop_assert_eq!(decoder.buffered_len(), 0);
        prop_assert_eq!(decoder.decode(), Err(DecodeError::Poisoned));
    }

    /// (c) A fixed-size message with any other length fails from its header.
    #[test]
    fn wrong_fixed_length_fails_from_the_header(
        id in prop::sample::select(vec![0u8, 1, 2, 3, 4, 6, 8, 9, 0x0D, 0x0E, 0x0F, 0x10, 0x11]),
        len in 1..=u32::MAX,
    ) {
        let expected = match id {
            4 | 0x0D | 0x11 => 5,
            6 | 8 | 0x10 => 13,
            9 => 3,
            _ => 1,
        };
        prop_assume!(len != expected);
        let mut decoder = Decoder::default();
        decoder.extend(&len.to_be_bytes());
        decoder.extend(&[id]);
        let err = decoder.decode();
        prop_assert!(matches!(err, Err(DecodeError::WrongLength { .. })), "{:?}", err);
    }
}

/// Whether the decoder accepts `message` under `limits`.
fn fits(message: &Message, limits: &DecoderLimits) -> bool {
    match message {
        Message::Bitfield(bits) => match limits.bitfield_len {
            BitfieldLen::AtMost(max) => bits.len() <= max as usize,
            BitfieldLen::Exactly(len) => bits.len() == len as usize,
        },
        Message::Piece { block, .. } => block.len() <= limits.max_block_len as usize,
        Message::Request(r) | Message::Cancel(r) | Message::RejectRequest(r) => {
            r.length <= limits.max_block_len
        }
        Message::Extended { payload, .. } => payload.len() <= limits.max_extended_len as usize,
        _ => true,
    }
}
