//! The streaming wire decoder on arbitrary bytes split at arbitrary points:
//! messages, "need more" or a typed error, never a panic; the buffer stays
//! below the largest frame; whatever decodes re-encodes to exactly the bytes
//! consumed and decodes again to the same messages.
//!
//! Input layout: byte 0 picks the stage (bit 0: start with a handshake) and
//! the limits (bits 1-2); bytes 1..=4 are the chunk sizes, used in turn
//! (0 feeds an empty chunk); the rest is the stream.
#![no_main]

use chunkswarm_core::wire::{
    BitfieldLen, DecodeError, Decoder, DecoderLimits, HANDSHAKE_LEN, Handshake, HandshakeDecoder,
    Message,
};
use libfuzzer_sys::fuzz_target;

/// Either decoder, so one loop drives both stages.
enum Stage {
    Handshake(HandshakeDecoder),
    Messages(Decoder),
}

/// What a stream decoded to.
#[derive(Debug, PartialEq)]
struct Outcome {
    handshake: Option<Handshake>,
    messages: Vec<Message>,
    error: Option<DecodeError>,
    buffered: usize,
}

fn limits(selector: u8, piece_count: u8) -> DecoderLimits {
    let mut limits = DecoderLimits::default();
    match selector & 0b11 {
        0 => {}
        1 => limits = limits.with_piece_count(u32::from(piece_count)),
        2 => {
            limits.max_block_len = 64;
            limits.bitfield_len = BitfieldLen::AtMost(16);
            limits.max_extended_len = 32;
        }
        _ => {
            limits.max_block_len = 0;
            limits.bitfield_len = BitfieldLen::Exactly(0);
            limits.max_extended_len = 0;
        }
    }
    limits
}

fn decode<'a>(
    limits: DecoderLimits,
    handshake_first: bool,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let mut stage = if handshake_first {
        Stage::Handshake(HandshakeDecoder::new(limits))
    } else {
        Stage::Messages(Decoder::new(limits))
    };
    let mut handshake = None;
    let mut messages = Vec::new();
    for chunk in chunks {
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
                    Ok(Some((received, decoder))) => {
                        handshake = Some(received);
                        stage = Stage::Messages(decoder);
                    }
                    Err(error) => {
                        assert!(matches!(d.decode(), Err(DecodeError::Poisoned)));
                        return Outcome {
                            handshake,
                            messages,
                            error: Some(error),
                            buffered: d.buffered_len(),
                        };
                    }
                },
                Stage::Messages(d) => match d.decode() {
                    Ok(None) => {
                        assert!(d.buffered_len() < limits.max_frame_len());
                        break;
                    }
                    Ok(Some(message)) => messages.push(message),
                    Err(error) => {
                        assert!(d.is_poisoned());
                        assert_eq!(d.decode(), Err(DecodeError::Poisoned));
                        return Outcome {
                            handshake,
                            messages,
                            error: Some(error),
                            buffered: d.buffered_len(),
                        };
                    }
                },
            }
        }
    }
    let buffered = match &stage {
        Stage::Handshake(d) => d.buffered_len(),
        Stage::Messages(d) => d.buffered_len(),
    };
    Outcome {
        handshake,
        messages,
        error: None,
        buffered,
    }
}

/// Cuts `stream` into chunks of `sizes`, used in turn; a zero size yields an
/// empty chunk, and a run of zeros still makes progress.
fn split<'a>(stream: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = stream;
    let mut turn = 0usize;
    let mut empties = 0usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = usize::from(sizes.get(turn % sizes.len().max(1)).copied().unwrap_or(1));
        turn = turn.wrapping_add(1);
        if size == 0 {
            empties += 1;
            if empties > sizes.len() {
                size = 1;
            }
        }
        if size > 0 {
            empties = 0;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at(rest.len().min(4));
    let handshake_first = control & 1 == 1;
    let limits = limits(control >> 1, sizes.first().copied().unwrap_or(0));

    let split_up = decode(limits, handshake_first, split(stream, sizes));
    // The split does not matter.
    let at_once = decode(limits, handshake_first, [stream]);
    assert_eq!(split_up, at_once);

    // What was decoded re-encodes to exactly the bytes it came from ...
    let mut encoded = Vec::new();
    if let Some(handshake) = &split_up.handshake {
        encoded.extend_from_slice(&handshake.to_bytes());
    }
    for message in &split_up.messages {
        assert_eq!(message.to_bytes().len(), message.encoded_len());
        encoded.extend_from_slice(&message.to_bytes());
    }
    assert!(stream.starts_with(&encoded));
    if split_up.error.is_none() {
        assert_eq!(encoded.len() + split_up.buffered, stream.len());
    }

    // ... and decodes again to the same handshake and messages.
    let again = decode(limits, handshake_first, [encoded.as_slice()]);
    assert_eq!(again.handshake, split_up.handshake);
    assert_eq!(again.messages, split_up.messages);
    assert_eq!(again.error, None);
    assert_eq!(again.buffered, 0);
});
