//! `Range` header evaluation on arbitrary headers and lengths: the served
//! ranges are always sorted, disjoint and inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (len, header) = data.split_at(8);
    let len = u64::from_le_bytes(len.try_into().unwrap_or([0; 8])) % (1 << 40);
    if let Ok(header) = std::str::from_utf8(header) {
        let _ = chunkswarm_tracker::fuzzing::range_header(header, len);
    }
});
