//! The origin's request-path splitter on arbitrary paths: no segment it
//! accepts can leave the media library.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        let _ = chunkswarm_tracker::fuzzing::request_path(raw);
    }
});
