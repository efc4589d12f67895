//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the
//! tracker's parsers of untrusted input, each with the invariants its output
//! must keep checked here. Not a stable API.

use std::ops::Range;

use crate::origin::{path, range};

/// Parses one client WebSocket message; returns whether it was accepted.
pub fn signaling_message(text: &str) -> bool {
    crate::signaling::message::parse(text).is_ok()
}

/// Reads client WebSocket frames from `bytes`, split after `split` bytes
/// as two socket reads would bring them, refusing messages over `max`
/// bytes; returns how many messages it read before an error or the end.
/// Either way the same bytes in one read give the same messages.
pub fn websocket_frames(bytes: &[u8], split: usize, max: usize) -> usize {
    crate::signaling::fuzz_websocket_frames(bytes, split, max)
}

/// Evaluates a `Range` header against `len` bytes and checks the result:
/// ranges sorted, disjoint, non-empty, inside the representation, at most
/// the origin's cap of them. Returns the ranges (empty for 200 or 416).
pub fn range_header(header: &str, len: u64) -> Vec<Range<u64>> {
    match range::evaluate(header, len) {
        range::RangeOutcome::Ranges(ranges) => {
            assert!(ranges.len() <= range::MAX_RANGES);
            for pair in ranges.windows(2) {
                assert!(pair[0].end < pair[1].start, "overlapping {ranges:?}");
            }
            for r in &ranges {
                assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
            }
            ranges
        }
        range::RangeOutcome::Ignore | range::RangeOutcome::Unsatisfiable => Vec::new(),
    }
}

/// Splits a raw request path into library segments and checks that none
/// can leave the library: no empty, dot-led, separator or control names.
pub fn request_path(raw: &str) -> Option<Vec<String>> {
    let segments = path::segments(raw).ok()?;
    for segment in &segments {
        assert!(path::is_plain_name(segment), "{segment:?}");
        assert!(!segment.contains(['/', '\\', '\0']) && segment != ".." && segment != ".");
    }
    Some(segments)
}
