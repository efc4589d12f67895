//! Unit tests of the streaming decoders.

use bytes::{Bytes, BytesMut};

use super::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn req(index: u32, begin: u32, length: u32) -> BlockRequest {
    BlockRequest {
        index,
        begin,
        length,
    }
}

fn every_kind() -> Vec<Message> {
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have { piece: 7 },
        Message::Bitfield(Bytes::from_static(&[0xFF, 0x80])),
        Message::Request(req(1, 16384, 16384)),
        Message::Piece {
            index: 1,
            begin: 16384,
            block: Bytes::from(vec![0x5A; 16384]),
        },
        Message::Cancel(req(1, 16384, 16384)),
        Message::Port(6881),
        Message::Suggest { piece: 3 },
        Message::HaveAll,
        Message::HaveNone,
        Message::RejectRequest(req(2, 0, 16384)),
        Message::AllowedFast { piece: 4 },
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"d1:md11:ut_metadatai1eee"),
        },
        Message::Extended {
            id: 1,
            payload: Bytes::new(),
        },
        Message::Piece {
            index: 0,
            begin: 0,
            block: Bytes::new(),
        },
        Message::Bitfield(Bytes::new()),
    ]
}

fn encode_all(messages: &[Message]) -> BytesMut {
    let mut buf = BytesMut::new();
    for message in messages {
        message.encode(&mut buf);
    }
    buf
}

/// Feeds `bytes` in chunks of `chunk` bytes and decodes everything.
fn decode_chunked(
    limits: DecoderLimits,
    bytes: &[u8],
    chunk: usize,
) -> Result<Vec<Message>, DecodeError> {
    let mut decoder = Decoder::new(limits);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        decoder.extend(piece);
        while let Some(message) = decoder.decode()? {
            out.push(message);
        }
        assert!(decoder.buffered_len() < decoder.limits().max_frame_len());
    }
    assert_eq!(decoder.buffered_len(), 0, "trailing bytes");
    Ok(out)
}

/// The error from feeding `bytes` to a fresh decoder all at once.
fn first_error(limits: DecoderLimits, bytes: &[u8]) -> DecodeError {
    let mut decoder = Decoder::new(limits);
    decoder.extend(bytes);
    loop {
        match decoder.decode() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("no error for {bytes:02x?}"),
            Err(err) => {
                assert!(decoder.is_poisoned());
                assert_eq!(decoder.buffered_len(), 0);
                return err;
            }
        }
    }
}

#[test]
fn decodes_bep3_bytes_literally() {
    let cases = [
        ("00000000", Message::KeepAlive),
        ("0000000100", Message::Choke),
        ("0000000101", Message::Unchoke),
        ("0000000102", Message::Interested),
        ("0000000103", Message::NotInterested),
        ("00000005 04 00000007", Message::Have { piece: 7 }),
        (
            "00000002 05 c0",
            Message::Bitfield(Bytes::from_static(&[0xC0])),
        ),
        (
            "0000000d 06 00000001 00004000 00004000",
            Message::Request(req(1, 0x4000, 0x4000)),
        ),
        (
            "0000000b 07 00000001 00004000 0102",
            Message::Piece {
                index: 1,
                begin: 0x4000,
                block: Bytes::from_static(&[1, 2]),
            },
        ),
        (
            "0000000d 08 00000001 00004000 00004000",
            Message::Cancel(req(1, 0x4000, 0x4000)),
        ),
        ("00000003 09 1ae1", Message::Port(6881)),
        ("00000005 0d 00000003", Message::Suggest { piece: 3 }),
        ("00000001 0e", Message::HaveAll),
        ("00000001 0f", Message::HaveNone),
        (
            "0000000d 10 00000002 00000000 00004000",
            Message::RejectRequest(req(2, 0, 0x4000)),
        ),
        ("00000005 11 00000004", Message::AllowedFast { piece: 4 }),
        (
            "00000004 14 02 6465",
            Message::Extended {
                id: 2,
                payload: Bytes::from_static(b"de"),
            },
        ),
    ];
    for (bytes, expected) in cases {
        let decoded = decode_chunked(DecoderLimits::default(), &hex(bytes), usize::MAX);
        assert_eq!(decoded, Ok(vec![expected]), "{bytes}");
    }
}

#[test]
fn any_split_decodes_the_same() {
    let sent = every_kind();
    let wire = encode_all(&sent);
    for chunk in [1, 2, 3, 4, 5, 7, 13, 100, 16384, 16397, wire.len()] {
        assert_eq!(
            decode_chunked(DecoderLimits::default(), &wire, chunk),
            Ok(sent.clone()),
            "chunk size {chunk}"
        );
    }
}

#[test]
fn payloads_are_not_copied() {
    let sent = [
        Message::Piece {
            index: 0,
            begin: 0,
            block: Bytes::from(vec![1; 100]),
        },
        Message::Piece {
            index: 0,
            begin: 100,
            block: Bytes::from(vec![2; 100]),
        },
    ];
    let mut decoder = Decoder::default();
    decoder.extend(&encode_all(&sent));
    let Some(Message::Piece { block: first, .. }) = decoder.decode().unwrap() else {
        panic!("expected a piece");
    };
    let Some(Message::Piece { block: second, .. }) = decoder.decode().unwrap() else {
        panic!("expected a piece");
    };
    // Both blocks are views into the one receive buffer, 13 header bytes apart.
    assert_eq!(second.as_ptr() as usize - first.as_ptr() as usize, 100 + 13);
}

#[test]
fn fixed_size_messages_with_wrong_length() {
    let cases = [
        ("00000002 00 00", MessageId::Choke, 2, 1),
        ("00000002 0e 00", MessageId::HaveAll, 2, 1),
        ("00000004 04 000000", MessageId::Have, 4, 5),
        ("00000006 04 0000000000", MessageId::Have, 6, 5),
        ("00000001 11", MessageId::AllowedFast, 1, 5),
        ("0000000c 06", MessageId::Request, 12, 13),
        ("0000000e 08", MessageId::Cancel, 14, 13),
        ("00000001 10", MessageId::RejectRequest, 1, 13),
        ("00000002 09 1a", MessageId::Port, 2, 3),
    ];
    for (bytes, id, len, expected) in cases {
        assert_eq!(
            first_error(DecoderLimits::default(), &hex(bytes)),
            DecodeError::WrongLength { id, len, expected },
            "{bytes}"
        );
    }
}

#[test]
fn variable_messages_shorter_than_their_fields() {
    assert_eq!(
        first_error(DecoderLimits::default(), &hex("00000008 07")),
        DecodeError::TooShort {
            id: MessageId::Piece,
            len: 8,
            min: 9
        }
    );
    assert_eq!(
        first_error(DecoderLimits::default(), &hex("00000001 14")),
        DecodeError::TooShort {
            id: MessageId::Extended,
            len: 1,
            min: 2
        }
    );
}

#[test]
fn unknown_ids_are_rejected() {
    for id in [10u8, 11, 12, 0x12, 19, 21, 0xFF] {
        let bytes = [0, 0, 0, 1, id];
        assert_eq!(
            first_error(DecoderLimits::default(), &bytes),
            DecodeError::UnknownId { id, len: 1 }
        );
    }
}

#[test]
fn too_long_is_rejected_from_the_header_alone() {
    let limits = DecoderLimits::default();
    let cases = [
        // A piece with a block one byte over the limit.
        (
            Message::Piece {
                index: 0,
                begin: 0,
                block: Bytes::from(vec![0; 128 * 1024 + 1]),
            },
            MessageId::Piece,
            128 * 1024 + 1,
            128 * 1024,
        ),
        (
            Message::Bitfield(Bytes::from(vec![0; 256 * 1024 + 1])),
            MessageId::Bitfield,
            256 * 1024 + 1,
            256 * 1024,
        ),
        (
            Message::Extended {
                id: 1,
                payload: Bytes::from(vec![0; 1024 * 1024 + 1]),
            },
            MessageId::Extended,
            1024 * 1024 + 1,
            1024 * 1024,
        ),
    ];
    for (message, id, payload_len, max) in cases {
        let wire = message.to_bytes();
        let mut decoder = Decoder::new(limits);
        // Only the length and the id: the error comes before the body.
        decoder.extend(&wire[..5]);
        assert_eq!(
            decoder.decode(),
            Err(DecodeError::TooLong {
                id,
                payload_len,
                max
            })
        );
        // At the limit itself it just waits for the body.
        let at_limit = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) - 1;
        let mut decoder = Decoder::new(limits);
        decoder.extend(&at_limit.to_be_bytes());
        decoder.extend(&wire[4..5]);
        assert_eq!(decoder.decode(), Ok(None));
        assert!(decoder.buffered_len() < limits.max_frame_len());
    }
}

#[test]
fn the_whole_length_is_checked() {
    // 0xFFFFFFFF must not wrap around into something small.
    for id in 0..=20u8 {
        let mut decoder = Decoder::default();
        decoder.extend(&[0xFF, 0xFF, 0xFF, 0xFF, id]);
        assert!(decoder.decode().is_err(), "id {id}");
    }
}

#[test]
fn lower_limits_apply() {
    let limits = DecoderLimits {
        max_block_len: 16384,
        bitfield_len: BitfieldLen::AtMost(4),
        max_extended_len: 10,
    };
    let piece = Message::Piece {
        index: 0,
        begin: 0,
        block: Bytes::from(vec![0; 16385]),
    };
    assert_eq!(
        first_error(limits, &piece.to_bytes()[..5]),
        DecodeError::TooLong {
            id: MessageId::Piece,
            payload_len: 16385,
            max: 16384
        }
    );
    assert_eq!(
        first_error(limits, &hex("00000006 05 0000000000")),
        DecodeError::TooLong {
            id: MessageId::Bitfield,
            payload_len: 5,
            max: 4
        }
    );
    assert_eq!(
        first_error(limits, &hex("0000000d 14 00")),
        DecodeError::TooLong {
            id: MessageId::Extended,
            payload_len: 11,
            max: 10
        }
    );
    assert_eq!(limits.max_frame_len(), 4 + 9 + 16384);
}

#[test]
fn requests_for_long_blocks_are_rejected() {
    let limits = DecoderLimits {
        max_block_len: 16384,
        ..DecoderLimits::default()
    };
    let ok = Message::Request(req(0, 0, 16384));
    assert_eq!(decode_chunked(limits, &ok.to_bytes(), 3), Ok(vec![ok]));
    for (message, id) in [
        (Message::Request(req(0, 0, 16385)), MessageId::Request),
        (Message::Cancel(req(0, 0, u32::MAX)), MessageId::Cancel),
        (
            Message::RejectRequest(req(0, 0, 1 << 20)),
            MessageId::RejectRequest,
        ),
    ] {
        let DecodeError::BlockTooLong { id: got, max, .. } =
            first_error(limits, &message.to_bytes())
        else {
            panic!("{message:?} accepted");
        };
        assert_eq!((got, max), (id, 16384));
    }
}

#[test]
fn exact_bitfield_length() {
    // 20 pieces: exactly 3 bytes.
    let limits = DecoderLimits::default().with_piece_count(20);
    let ok = Message::Bitfield(Bytes::from_static(&[0xFF, 0xFF, 0xF0]));
    assert_eq!(decode_chunked(limits, &ok.to_bytes(), 2), Ok(vec![ok]));
    assert_eq!(
        first_error(limits, &hex("00000003 05 ffff")),
        DecodeError::BitfieldLength {
            len: 2,
            expected: 3
        }
    );
    assert_eq!(
        first_error(limits, &hex("00000005 05")),
        DecodeError::BitfieldLength {
            len: 4,
            expected: 3
        }
    );
    // Checked from the header alone, before the body.
    assert_eq!(
        first_error(limits, &hex("00100000 05")),
        DecodeError::BitfieldLength {
            len: (1 << 20) - 1,
            expected: 3
        }
    );
}

#[test]
fn errors_poison_the_decoder() {
    let mut decoder = Decoder::default();
    decoder.extend(&hex(
        "0000000100 00000005 04 00000001 00000001 ff 0000000100",
    ));
    assert_eq!(decoder.decode(), Ok(Some(Message::Choke)));
    assert_eq!(decoder.decode(), Ok(Some(Message::Have { piece: 1 })));
    assert_eq!(
        decoder.decode(),
        Err(DecodeError::UnknownId { id: 0xFF, len: 1 })
    );
    assert!(decoder.is_poisoned());
    assert_eq!(decoder.buffered_len(), 0);
    decoder.extend(&hex("0000000101"));
    assert_eq!(decoder.buffered_len(), 0);
    assert_eq!(decoder.decode(), Err(DecodeError::Poisoned));
    assert_eq!(decoder.decode(), Err(DecodeError::Poisoned));
}

fn handshake() -> Handshake {
    Handshake {
        reserved: Reserved::NONE.with_extended(true),
        info_hash: [1; 20],
        peer_id: [2; 20],
    }
}

#[test]
fn handshake_then_messages_in_one_chunk() {
    let mut wire = BytesMut::new();
    handshake().encode(&mut wire);
    let sent = every_kind();
    wire.extend_from_slice(&encode_all(&sent));

    let mut handshaking = HandshakeDecoder::default();
    handshaking.extend(&wire);
    let (received, mut decoder) = handshaking.decode().unwrap().unwrap();
    assert_eq!(received, handshake());
    assert_eq!(handshaking.buffered_len(), 0);
    assert_eq!(
        handshaking.decode().unwrap_err(),
        DecodeError::AlreadyDecoded
    );

    let mut messages = Vec::new();
    while let Some(message) = decoder.decode().unwrap() {
        messages.push(message);
    }
    assert_eq!(messages, sent);
}

#[test]
fn handshake_byte_by_byte() {
    let bytes = handshake().to_bytes();
    let mut handshaking = HandshakeDecoder::default();
    for (i, byte) in bytes.iter().enumerate() {
        assert!(matches!(handshaking.decode(), Ok(None)), "at byte {i}");
        handshaking.extend(&[*byte]);
    }
    let (received, decoder) = handshaking.decode().unwrap().unwrap();
    assert_eq!(received, handshake());
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn handshake_errors_come_at_the_first_wrong_byte() {
    let mut handshaking = HandshakeDecoder::default();
    handshaking.extend(b"\x13BitTorrent");
    assert!(matches!(handshaking.decode(), Ok(None)));
    handshaking.extend(b" Protocol");
    assert_eq!(
        handshaking.decode().unwrap_err(),
        DecodeError::Handshake(HandshakeError::WrongProtocol {
            offset: 11,
            found: b'P'
        })
    );
    assert_eq!(handshaking.buffered_len(), 0);
    handshaking.extend(&handshake().to_bytes());
    assert_eq!(handshaking.buffered_len(), 0);
    assert_eq!(handshaking.decode().unwrap_err(), DecodeError::Poisoned);

    let mut handshaking = HandshakeDecoder::default();
    handshaking.extend(b"\x00");
    assert_eq!(
        handshaking.decode().unwrap_err(),
        DecodeError::Handshake(HandshakeError::WrongPstrlen { found: 0 })
    );
}

#[test]
fn limits_are_passed_on() {
    let limits = DecoderLimits::default().with_piece_count(9);
    let mut handshaking = HandshakeDecoder::new(limits);
    handshaking.extend(&handshake().to_bytes());
    let (_, decoder) = handshaking.decode().unwrap().unwrap();
    assert_eq!(decoder.limits(), &limits);
}

#[test]
fn errors_read_well() {
    assert_eq!(
        DecodeError::TooLong {
            id: MessageId::Piece,
            payload_len: 200_000,
            max: 131_072
        }
        .to_string(),
        "piece message declares a payload of 200000 bytes, more than the limit 131072"
    );
    assert_eq!(
        DecodeError::WrongLength {
            id: MessageId::Have,
            len: 4,
            expected: 5
        }
        .to_string(),
        "have message declares length 4, but it is always 5"
    );
    assert_eq!(
        DecodeError::from(HandshakeError::WrongPstrlen { found: 3 }).to_string(),
        "handshake protocol string length is 3, expected 19"
    );
}
