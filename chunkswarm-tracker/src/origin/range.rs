//! The `Range` header of RFC 9110 (section 14), for `bytes` only.
//!
//! A header the server does not understand (other unit, bad syntax, too many
//! ranges) is ignored, which RFC 9110 allows; a valid header whose every range
//! starts past the end is unsatisfiable (416); otherwise the satisfiable
//! ranges are served, overlapping or adjacent ones merged.

use std::ops::Range;

/// The most ranges one request may list; more is ignored as abuse.
pub(crate) const MAX_RANGES: usize = 16;

/// What to send for a `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeOutcome {
    /// Send the whole representation (200).
    Ignore,
    /// Send these byte ranges (206), in ascending order, disjoint, non-empty.
    Ranges(Vec<Range<u64>>),
    /// Nothing requested exists (416).
    Unsatisfiable,
}

#[derive(Debug, Clone, Copy)]
enum Spec {
    /// `first-last` or `first-`.
    From(u64, Option<u64>),
    /// `-suffix`.
    Suffix(u64),
}

/// Evaluates a `Range` header against a representation of `len` bytes.
pub(crate) fn evaluate(header: &str, len: u64) -> RangeOutcome {
    let Some(specs) = parse(header) else {
        return RangeOutcome::Ignore;
    };
    let mut ranges: Vec<Range<u64>> = specs
        .iter()
        .filter_map(|spec| match *spec {
            Spec::From(first, last) if first < len => {
                let end = last.map_or(len, |last| last.saturating_add(1).min(len));
                Some(first..end)
            }
            Spec::Suffix(n) if n > 0 && len > 0 => Some(len - n.min(len)..len),
            _ => None,
        })
        .collect();
    if ranges.is_empty() {
        // An empty representation: a suffix range is satisfiable, yet no
        // Content-Range can describe it, so send the (empty) whole.
        let suffix_of_empty =
            len == 0 && specs.iter().any(|s| matches!(s, Spec::Suffix(n) if *n > 0));
        return if suffix_of_empty {
            RangeOutcome::Ignore
        } else {
            RangeOutcome::Unsatisfiable
        };
    }
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    RangeOutcome::Ranges(merged)
}

/// `bytes=spec, spec` with optional whitespace; `None` if not understood.
fn parse(header: &str) -> Option<Vec<Spec>> {
    let (unit, set) = header.trim().split_once('=')?;
    if !unit.trim_end().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for item in set.split(',') {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() {
            // RFC 9110 list syntax allows empty elements.
            continue;
        }
        if specs.len() == MAX_RANGES {
            return None;
        }
        let (first, last) = item.split_once('-')?;
        let spec = if first.is_empty() {
            Spec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() {
                None
            } else {
                Some(digits(last)?)
            };
            if last.is_some_and(|last| last < first) {
                return None;
            }
            Spec::From(first, last)
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Absurdly long numbers are "past the end" rather than invalid.
    Some(text.parse::<u64>().unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::RangeOutcome::{Ignore, Ranges, Unsatisfiable};
    use super::*;

    #[test]
    fn single_ranges_follow_rfc_9110() {
        let cases: &[(&str, u64, RangeOutcome)] = &[
            ("bytes=0-0", 10, Ranges(vec![0..1])),
            ("bytes=9-9", 10, Ranges(vec![9..10])),
            ("bytes=9-", 10, Ranges(vec![9..10])),
            ("bytes=0-", 10, Ranges(vec![0..10])),
            ("bytes=0-99", 10, Ranges(vec![0..10])),
            ("bytes=-1", 10, Ranges(vec![9..10])),
            ("bytes=-10", 10, Ranges(vec![0..10])),
            ("bytes=-500", 10, Ranges(vec![0..10])),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-5", 0, Ignore),
            ("BYTES = 2-3", 10, Ranges(vec![2..4])),
            ("bytes=99999999999999999999999-", 10, Unsatisfiable),
            ("bytes=0-99999999999999999999999", 10, Ranges(vec![0..10])),
        ];
        for (header, len, want) in cases {
            assert_eq!(&evaluate(header, *len), want, "{header} of {len}");
        }
    }

    #[test]
    fn invalid_headers_are_ignored() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=a-b",
            "bytes=5-2",
            "bytes=-",
            "bytes=1-2-3",
            "items=0-1",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes=1 -2",
        ] {
            assert_eq!(evaluate(header, 10), Ignore, "{header}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(evaluate(&many, 10), Ignore);
    }

    #[test]
    fn multiple_ranges_drop_unsatisfiable_and_merge_overlaps() {
        assert_eq!(evaluate("bytes=0-1, 4-5", 10), Ranges(vec![0..2, 4..6]));
        assert_eq!(evaluate("bytes=4-5,0-1", 10), Ranges(vec![0..2, 4..6]));
        assert_eq!(evaluate("bytes=0-4,3-6,7-7", 10), Ranges(vec![0..8]));
        assert_eq!(evaluate("bytes=0-1,50-60", 10), Ranges(vec![0..2]));
        assert_eq!(evaluate("bytes=50-60,70-", 10), Unsatisfiable);
        assert_eq!(evaluate("bytes=0-0,,-1", 10), Ranges(vec![0..1, 9..10]));
    }
}
