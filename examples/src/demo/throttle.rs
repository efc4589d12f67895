//! A bandwidth cap on the origin, so that a demo on one machine shows what a
//! slow origin looks like: pieces arriving one by one, peers taking over.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::{Stream, StreamExt as _};
use tokio::time::Instant;

/// The largest slice of a body sent at once under the cap.
const SLICE: usize = 16 << 10;

/// One byte budget shared by every origin answer: sends are spaced so that
/// all of them together stay under the rate.
#[derive(Debug)]
pub struct OriginThrottle {
    bytes_per_second: u64,
    /// When the next slice may go.
    next: Mutex<Option<Instant>>,
}

impl OriginThrottle {
    /// A cap of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            bytes_per_second: bytes_per_second.max(1),
            next: Mutex::new(None),
        }
    }

    /// The rate it allows.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Books `len` bytes and returns when they may be sent.
    fn book(&self, len: usize, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        // An idle origin may not save up more than a slice's worth.
        let start = next.map_or(now, |at| at.max(now));
        let cost = Duration::from_secs_f64(len as f64 / self.bytes_per_second as f64);
        *next = Some(start + cost);
        start
    }
}

/// Middleware: answers under `/media/` are paced by the throttle.
pub(crate) async fn throttle_media(
    State(throttle): State<Arc<OriginThrottle>>,
    request: Request,
    next: Next,
) -> Response {
    let media = request.uri().path().starts_with("/media/");
    let response = next.run(request).await;
    if !media {
        return response;
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from_stream(paced(body, throttle)))
}

/// The body's bytes in slices of at most [`SLICE`], each sent at its booked
/// time.
fn paced(
    body: Body,
    throttle: Arc<OriginThrottle>,
) -> impl Stream<Item = Result<Bytes, axum::Error>> + Send {
    let slices = body.into_data_stream().flat_map(|chunk| {
        let slices: Vec<Result<Bytes, axum::Error>> = match chunk {
            Ok(mut bytes) => {
                let mut out = Vec::with_capacity(bytes.len().div_ceil(SLICE));
                while !bytes.is_empty() {
                    out.push(Ok(bytes.split_to(bytes.len().min(SLICE))));
                }
                out
            }
            Err(e) => vec![Err(e)],
        };
        futures_util::stream::iter(slices)
    });
    slices.then(move |slice| {
        let throttle = Arc::clone(&throttle);
        async move {
            if let Ok(bytes) = &slice {
                let at = throttle.book(bytes.len(), Instant::now());
                tokio::time::sleep_until(at).await;
            }
            slice
        }
    })
}

/// Why a rate did not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a rate: give bytes per second, e.g. 262144, 256k or 2M (k = 1024)")]
pub struct ParseRateError(String);

/// Parses a byte rate: a whole number with an optional `k`, `m` or `g`
/// suffix (powers of 1024; a trailing `B`, `iB` or `/s` is allowed).
/// `0` means no limit and gives `None`.
pub fn parse_rate(text: &str) -> Result<Option<u64>, ParseRateError> {
    let error = || ParseRateError(text.to_owned());
    let lower = text.trim().to_ascii_lowercase();
    let trimmed = lower.trim_end_matches("/s");
    let trimmed = trimmed
        .strip_suffix("ib")
        .or_else(|| trimmed.strip_suffix('b'))
        .unwrap_or(trimmed);
    let (digits, shift) = match trimmed.char_indices().last() {
        Some((i, 'k')) => (&trimmed[..i], 10),
        Some((i, 'm')) => (&trimmed[..i], 20),
        Some((i, 'g')) => (&trimmed[..i], 30),
        _ => (trimmed, 0),
    };
    let digits = digits.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    let value: u64 = digits.parse().map_err(|_| error())?;
    let value = value.checked_mul(1 << shift).ok_or_else(error)?;
    Ok((value > 0).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_binary_suffixes() {
        assert_eq!(parse_rate("262144").unwrap(), Some(262_144));
        assert_eq!(parse_rate("256k").unwrap(), Some(256 << 10));
        assert_eq!(parse_rate("256KiB").unwrap(), Some(256 << 10));
        assert_eq!(parse_rate("2M").unwrap(), Some(2 << 20));
        assert_eq!(parse_rate("1MB/s").unwrap(), Some(1 << 20));
        assert_eq!(parse_rate("1g").unwrap(), Some(1 << 30));
        assert_eq!(parse_rate("0").unwrap(), None);
        for bad in [
            "",
            "k",
            "fast",
            "-5",
            "1.5M",
            "99999999999999999999",
            "17179869184g",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bookings_share_one_rate() {
        let throttle = OriginThrottle::new(100 << 10);
        let now = Instant::now();
        assert_eq!(throttle.book(50 << 10, now), now);
        // The second half-second's bytes wait for the first's.
        assert_eq!(
            throttle.book(50 << 10, now),
            now + Duration::from_millis(500)
        );
        // Idle time is not saved up beyond now.
        let later = now + Duration::from_secs(10);
        assert_eq!(throttle.book(1, later), later);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_body_arrives_whole_and_on_time() {
        let throttle = Arc::new(OriginThrottle::new(64 << 10));
        let data: Vec<u8> = (0..(128 << 10) + 5).map(|i| (i % 251) as u8).collect();
        let start = Instant::now();
        let out: Vec<u8> = paced(Body::from(data.clone()), throttle)
            .map(|slice| slice.unwrap())
            .collect::<Vec<_>>()
            .await
            .concat();
        assert!(out == data);
        // 128 KiB at 64 KiB/s: the last slice is booked about 2 s in.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }
}
