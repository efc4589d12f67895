//! BEP 10 payloads from a peer (the extension handshake and the `cs_origin`
//! claim) on arbitrary bytes: a value or a typed error, never a panic, and
//! whatever decodes re-encodes to something that decodes to the same value.
#![no_main]

use chunkswarm_core::wire::extension::{ExtensionHandshake, MAX_CLAIM_HOPS, OriginClaim};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(handshake) = ExtensionHandshake::decode(data) {
        let again = ExtensionHandshake::decode(&handshake.encode());
        assert_eq!(again.as_ref(), Ok(&handshake));
    }
    if let Ok(claim) = OriginClaim::decode(data) {
        assert!(claim.hops <= MAX_CLAIM_HOPS);
        assert_eq!(OriginClaim::decode(&claim.encode()), Ok(claim));
    }
});
