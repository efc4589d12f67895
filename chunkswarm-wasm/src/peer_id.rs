//! How peer ids are shown to JavaScript.
//!
//! chunkswarm's own ids (`-CS0001-` and twelve letters or digits, from
//! [`DriverConfig::seeded`](chunkswarm_core::driver::DriverConfig::seeded)
//! with a seed from `crypto.getRandomValues`) are printable; other clients'
//! ids may be any 20 bytes.

/// A peer id as text: as is when it is printable ASCII, else lowercase hex.
pub fn display_peer_id(id: &[u8; 20]) -> String {
    if id.iter().all(|b| b.is_ascii_graphic()) {
        id.iter().map(|&b| char::from(b)).collect()
    } else {
        id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ids_show_as_text_and_others_as_hex() {
        assert_eq!(
            display_peer_id(b"-CS0001-0z079ABCDEFG"),
            "-CS0001-0z079ABCDEFG"
        );
        let mut binary = [0u8; 20];
        binary[0] = b'-';
        binary[19] = 0xff;
        assert_eq!(display_peer_id(&binary), format!("2d{}ff", "00".repeat(18)));
    }
}
