//! The metainfo parser on arbitrary bytes: a torrent or a typed error, never a
//! panic; whatever parses re-serialises to the same torrent.
#![no_main]

use chunkswarm_core::metainfo::Metainfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(metainfo) = Metainfo::from_bytes(data) {
        let again = Metainfo::from_bytes(&metainfo.to_bytes());
        assert_eq!(again.as_ref(), Ok(&metainfo));
        let info = metainfo.info();
        assert_eq!(info.piece_hashes().len() as u32, info.layout().piece_count());
    }
});
