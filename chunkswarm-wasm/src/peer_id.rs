//! Peer ids: `-CS0001-` and twelve random characters, and how ids are shown.

/// The client prefix (Azureus style), shared with native chunkswarm peers.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-CS0001-";

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A peer id from twelve random bytes, printable so that it reads well in
/// logs and peer lists.
pub fn peer_id_from_random(random: [u8; 12]) -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(PEER_ID_PREFIX);
    for (slot, byte) in id[8..].iter_mut().zip(random) {
        *slot = ALPHABET[usize::from(byte) % ALPHABET.len()];
    }
    id
}

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
    fn ids_are_prefixed_and_printable() {
        let id = peer_id_from_random([0, 61, 62, 255, 9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(&id[..8], PEER_ID_PREFIX);
        assert_eq!(display_peer_id(&id), "-CS0001-0z079ABCDEFG");
        let binary = [0u8; 20];
        assert_eq!(display_peer_id(&binary), "00".repeat(20));
    }
}
