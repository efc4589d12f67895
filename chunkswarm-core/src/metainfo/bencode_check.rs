//! A structural pass over bencode before any decoder sees it.
//!
//! The decoding crate recurses once per nesting level and trusts declared string
//! lengths until it reads them, so a hostile `.torrent` of a million `l`s could
//! exhaust the stack. This pass is iterative, allocates nothing, bounds the
//! nesting depth, and checks that every length and integer is well formed and
//! that exactly one value fills the input.

/// Deepest nesting of lists and dictionaries accepted. Real metainfo nests
/// four deep (`info` → `files` → entry → `path`).
pub(crate) const MAX_DEPTH: usize = 32;

/// What is wrong with the bencode, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed bencode at byte {offset}: {problem}")]
pub struct BencodeError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What the problem is.
    pub problem: BencodeProblem,
}

/// The kinds of malformed bencode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BencodeProblem {
    /// The input ended inside a value.
    #[error("unexpected end of input")]
    Truncated,
    /// A byte that cannot start a value here.
    #[error("unexpected byte {0:#04x}")]
    UnexpectedByte(u8),
    /// An integer or string length with no digits, a leading zero or a `-0`.
    #[error("malformed number")]
    BadNumber,
    /// A string length that overflows or runs past the input.
    #[error("string length runs past the end of the input")]
    StringTooLong,
    /// Lists and dictionaries nested deeper than the bound.
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A dictionary key that is not a byte string.
    #[error("dictionary key is not a byte string")]
    NonStringKey,
    /// Bytes after the single top-level value.
    #[error("trailing bytes after the value")]
    TrailingBytes,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    List,
    /// A dictionary, expecting a key next when `true`.
    Dict {
        expect_key: bool,
    },
}

/// Checks that `input` is exactly one well-formed bencode value.
pub(crate) fn check(input: &[u8]) -> Result<(), BencodeError> {
    let len = value_len(input)?;
    if len == input.len() {
        Ok(())
    } else {
        Err(BencodeError {
            offset: len,
            problem: BencodeProblem::TrailingBytes,
        })
    }
}

/// The length of the well-formed bencode value that `input` starts with
/// (what follows it is not looked at).
pub(crate) fn value_len(input: &[u8]) -> Result<usize, BencodeError> {
    let mut stack = [Container::List; MAX_DEPTH];
    let mut depth = 0usize;
    let mut pos = 0usize;
    let fail = |offset, problem| Err(BencodeError { offset, problem });

    loop {
        let Some(&byte) = input.get(pos) else {
            return fail(pos, BencodeProblem::Truncated);
        };
        let in_key_position = depth > 0 && stack[depth - 1] == Container::Dict { expect_key: true };
        if byte == b'e' && depth > 0 {
            if stack[depth - 1] == (Container::Dict { expect_key: false }) {
                // A key without its value.
                return fail(pos, BencodeProblem::UnexpectedByte(byte));
            }
            depth -= 1;
            pos += 1;
        } else {
            if in_key_position && !byte.is_ascii_digit() {
                return fail(pos, BencodeProblem::NonStringKey);
            }
            match byte {
                b'i' => pos = skip_integer(input, pos)?,
                b'0'..=b'9' => pos = skip_string(input, pos)?,
                b'l' | b'd' => {
                    if depth == MAX_DEPTH {
                        return fail(pos, BencodeProblem::TooDeep);
                    }
                    mark_value_done(&mut stack, depth);
                    stack[depth] = if byte == b'l' {
                        Container::List
                    } else {
                        Container::Dict { expect_key: true }
                    };
                    depth += 1;
                    pos += 1;
                    continue;
                }
                other => return fail(pos, BencodeProblem::UnexpectedByte(other)),
            }
            mark_value_done(&mut stack, depth);
        }
        if depth == 0 {
            return Ok(pos);
        }
    }
}

/// A key or value finished inside the container at `depth`: dictionaries
/// alternate between expecting a key and a value.
fn mark_value_done(stack: &mut [Container; MAX_DEPTH], depth: usize) {
    if depth > 0 {
        if let Container::Dict { expect_key } = &mut stack[depth - 1] {
            *expect_key = !*expect_key;
        }
    }
}

/// Skips `i<digits>e` starting at `pos` and returns the position after it.
fn skip_integer(input: &[u8], pos: usize) -> Result<usize, BencodeError> {
    let start = pos + 1;
    let end = find(input, start, b'e')?;
    let digits = &input[start..end];
    let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
    let well_formed = !unsigned.is_empty()
        && unsigned.iter().all(u8::is_ascii_digit)
        && (unsigned == b"0" || unsigned[0] != b'0')
        && digits != b"-0";
    if !well_formed {
        return Err(BencodeError {
            offset: start,
            problem: BencodeProblem::BadNumber,
        });
    }
    Ok(end + 1)
}

/// Skips `<len>:<bytes>` starting at `pos` and returns the position after it.
fn skip_string(input: &[u8], pos: usize) -> Result<usize, BencodeError> {
    let colon = find(input, pos, b':')?;
    let digits = &input[pos..colon];
    let bad = |problem| BencodeError {
        offset: pos,
        problem,
    };
    if !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
        return Err(bad(BencodeProblem::BadNumber));
    }
    let length = digits.iter().try_fold(0usize, |acc, d| {
        acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    });
    let end = length
        .and_then(|len| (colon + 1).checked_add(len))
        .filter(|&end| end <= input.len())
        .ok_or(bad(BencodeProblem::StringTooLong))?;
    Ok(end)
}

/// Position of the first `byte` at or after `from`, bounded to 20 bytes of
/// digits so a run of digits cannot make the scan quadratic.
fn find(input: &[u8], from: usize, byte: u8) -> Result<usize, BencodeError> {
    let window = input.get(from..).unwrap_or_default();
    match window.iter().take(21).position(|&b| b == byte) {
        Some(i) => Ok(from + i),
        None if window.len() <= 21 => Err(BencodeError {
            offset: input.len(),
            problem: BencodeProblem::Truncated,
        }),
        None => Err(BencodeError {
            offset: from,
            problem: BencodeProblem::BadNumber,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(input: &[u8]) -> Option<BencodeProblem> {
        check(input).err().map(|e| e.problem)
    }

    #[test]
    fn accepts_well_formed_values() {
        for ok in [
            &b"i0e"[..],
            b"i-42e",
            b"0:",
            b"4:spam",
            b"le",
            b"de",
            b"l4:spami7ee",
            b"d3:bar4:spam3:fooi42ee",
            b"d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces0:ee",
        ] {
            assert_eq!(check(ok), Ok(()), "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn rejects_malformed_values() {
        use BencodeProblem::*;
        assert_eq!(problem(b""), Some(Truncated));
        assert_eq!(problem(b"i12"), Some(Truncated));
        assert_eq!(problem(b"ie"), Some(BadNumber));
        assert_eq!(problem(b"i-0e"), Some(BadNumber));
        assert_eq!(problem(b"i03e"), Some(BadNumber));
        assert_eq!(problem(b"i1x2e"), Some(BadNumber));
        assert_eq!(problem(b"5:abc"), Some(StringTooLong));
        assert_eq!(problem(b"99999999999999999999:a"), Some(StringTooLong));
        assert_eq!(problem(b"01:a"), Some(BadNumber));
        assert_eq!(problem(b"l"), Some(Truncated));
        assert_eq!(problem(b"di1e1:ae"), Some(NonStringKey));
        assert_eq!(problem(b"d1:ae"), Some(UnexpectedByte(b'e')));
        assert_eq!(problem(b"i1ei2e"), Some(TrailingBytes));
        assert_eq!(problem(b"x"), Some(UnexpectedByte(b'x')));
        assert_eq!(problem(b"e"), Some(UnexpectedByte(b'e')));
    }

    #[test]
    fn bounds_nesting() {
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert_eq!(check(&ok), Ok(()));
        let deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert_eq!(problem(&deep), Some(BencodeProblem::TooDeep));
        assert_eq!(
            problem(&vec![b'l'; 1_000_000]),
            Some(BencodeProblem::TooDeep)
        );
    }

    #[test]
    fn long_digit_runs_are_rejected_quickly() {
        let mut input = vec![b'1'; 1_000_000];
        input.push(b':');
        assert_eq!(problem(&input), Some(BencodeProblem::BadNumber));
    }
}
