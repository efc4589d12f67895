//! The magnet parser on arbitrary text: a link or a typed error, never a
//! panic; whatever parses writes out to a link that parses to the same.
#![no_main]

use chunkswarm_core::magnet::Magnet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(magnet) = Magnet::parse(text) {
        let again = Magnet::parse(&magnet.to_string());
        assert_eq!(again.as_ref(), Ok(&magnet));
    }
});
