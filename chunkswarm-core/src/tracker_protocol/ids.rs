//! The 20-byte ids of the WebTorrent protocol as JSON strings.
//!
//! WebTorrent sends an info hash, peer id or offer id as a JavaScript string
//! of 20 characters whose char codes are the bytes (0 to 255), so on the wire
//! it is a JSON string of 20 characters, each at most U+00FF.

use std::fmt;

use crate::metainfo::InfoHash;

/// A peer id or offer id as the tracker protocol carries it: 20 opaque
/// bytes, shown in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BinaryId(pub [u8; 20]);

impl BinaryId {
    /// The lowercase hex form.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for BinaryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Decodes a binary string: exactly 20 chars, each at most U+00FF.
#[inline]
pub fn decode_binary(text: &str) -> Option<[u8; 20]> {
    let mut bytes = [0u8; 20];
    let mut chars = text.chars();
    for byte in &mut bytes {
        *byte = u8::try_from(u32::from(chars.next()?)).ok()?;
    }
    chars.next().is_none().then_some(bytes)
}

/// A JSON string literal (quotes included) of exactly 20 chars U+0000 to
/// U+00FF, as bytes: [`decode_binary`] of the string it denotes, read
/// without allocating (escapes are common in binary ids).
#[inline]
pub fn decode_json_binary(literal: &str) -> Option<[u8; 20]> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut bytes = [0u8; 20];
    let mut count = 0;
    let mut at = 0;
    // Byte by byte: a char up to U+00FF is one ASCII byte, or two UTF-8
    // bytes led by 0xC2 or 0xC3; any other lead is a wider char.
    while let Some(&b) = inner.get(at) {
        let (value, len) = match b {
            b'\\' => {
                let (value, len) = match *inner.get(at + 1)? {
                    b'"' => (b'"', 2),
                    b'\\' => (b'\\', 2),
                    b'/' => (b'/', 2),
                    b'b' => (0x08, 2),
                    b'f' => (0x0c, 2),
                    b'n' => (b'\n', 2),
                    b'r' => (b'\r', 2),
                    b't' => (b'\t', 2),
                    // Up to U+00FF: `\u00` and two hex digits (wider is no byte).
                    b'u' => match *inner.get(at + 2..at + 6)? {
                        [b'0', b'0', high, low] => (hex_digit(high)? << 4 | hex_digit(low)?, 6),
                        _ => return None,
                    },
                    _ => return None,
                };
                (value, len)
            }
            // JSON has no unescaped control characters or quotes inside.
            b'"' | 0..=0x1f => return None,
            0x20..=0x7f => (b, 1),
            0xc2 | 0xc3 => {
                let next = *inner.get(at + 1)?;
                ((b & 0x1f) << 6 | (next & 0x3f), 2)
            }
            _ => return None,
        };
        *bytes.get_mut(count)? = value;
        count += 1;
        at += len;
    }
    (count == 20).then_some(bytes)
}

/// The value of one hex digit, either case.
#[inline]
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Appends `bytes` as a JSON string of chars U+0000 to U+00FF.
#[inline]
pub fn push_binary(out: &mut String, bytes: &[u8; 20]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            _ => out.push(char::from(b)),
        }
    }
    out.push('"');
}

/// Appends an info hash as a binary JSON string.
#[inline]
pub fn push_info_hash(out: &mut String, info_hash: &InfoHash) {
    push_binary(out, info_hash.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_through_json() {
        for start in (0u16..=255).step_by(20) {
            let mut bytes = [0u8; 20];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = ((start as usize + i) % 256) as u8;
            }
            let mut json = String::new();
            push_binary(&mut json, &bytes);
            let text: String = serde_json::from_str(&json).unwrap();
            assert_eq!(decode_binary(&text), Some(bytes));
            assert_eq!(decode_json_binary(&json), Some(bytes));
        }
    }

    #[test]
    fn json_literals_read_like_serde_reads_them() {
        let cases = [
            r#""\u0041aaaaaaaaaaaaaaaaaa\/""#,
            r#""\b\f\n\r\t\"\\aaaaaaaaaaaaa""#,
            r#""\u00ffaaaaaaaaaaaaaaaaaaa""#,
            r#""\u0100aaaaaaaaaaaaaaaaaaa""#,
            r#""\ud800aaaaaaaaaaaaaaaaaaa""#,
            r#""aaaaaaaaaaaaaaaaaaa""#,
            r#""aaaaaaaaaaaaaaaaaaaaa""#,
            r#""\x0aaaaaaaaaaaaaaaaaaaa""#,
            r#""\u00"#,
            r#""\u+0ffaaaaaaaaaaaaaaaaaaa""#,
            r#""\u00FfaaaaaaaaaaaaaaaaaaA""#,
            r#""\u00g0aaaaaaaaaaaaaaaaaaa""#,
            r#""\u0g00aaaaaaaaaaaaaaaaaaa""#,
            r#""\u01ffaaaaaaaaaaaaaaaaaaa""#,
            r#""aaaaaaaaaaaaaaaaaaa\u00""#,
            "\"\u{7f}\u{80}\u{ff}aaaaaaaaaaaaaaaaa\"",
            "aaaaaaaaaaaaaaaaaaaa",
            "\"",
            "",
        ];
        for case in cases {
            let via_serde = serde_json::from_str::<String>(case)
                .ok()
                .and_then(|text| decode_binary(&text));
            assert_eq!(decode_json_binary(case), via_serde, "{case}");
        }
    }

    #[test]
    fn rejects_wrong_lengths_and_wide_chars() {
        assert_eq!(decode_binary("short"), None);
        assert_eq!(decode_binary(&"a".repeat(21)), None);
        assert_eq!(decode_binary(&format!("{}\u{100}", "a".repeat(19))), None);
        assert!(decode_binary(&format!("{}\u{ff}", "a".repeat(19))).is_some());
    }
}
