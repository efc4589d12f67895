//! BEP 9 metadata messages and their assembly on arbitrary bytes: a message
//! or a typed error, never a panic; whatever decodes re-encodes to itself,
//! and data pieces fed to an assembler never panic it either.
#![no_main]

use bytes::Bytes;
use chunkswarm_core::metainfo::InfoHash;
use chunkswarm_core::wire::metadata::{MetadataAssembler, MetadataMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let payload = Bytes::copy_from_slice(data);
    let Ok(message) = MetadataMessage::decode(&payload) else {
        return;
    };
    assert_eq!(MetadataMessage::decode(&message.encode()).as_ref(), Ok(&message));
    if let MetadataMessage::Data { piece, total_size, data } = message {
        if let Ok(mut assembler) = MetadataAssembler::new(InfoHash::of(&data), total_size) {
            let _ = assembler.add(piece, total_size, &data);
            let _ = assembler.finish();
        }
    }
});
