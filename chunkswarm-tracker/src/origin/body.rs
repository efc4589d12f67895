//! Response bodies of the origin: file ranges streamed in chunks, and
//! `multipart/byteranges` for several ranges.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::metrics::add;
use crate::tracker::Inner;

/// Bytes read from the file per chunk.
const CHUNK: usize = 256 << 10;

/// A piece of a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal bytes (multipart headers).
    Literal(Bytes),
    /// A byte range of the file.
    File(Range<u64>),
}

/// The parts of a `multipart/byteranges` body and its total length.
pub(crate) fn multipart(
    ranges: &[Range<u64>],
    len: u64,
    content_type: &str,
    boundary: &str,
) -> (Vec<Part>, u64) {
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut total = 0u64;
    for r in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
            r.start,
            r.end - 1
        );
        total += head.len() as u64 + (r.end - r.start);
        parts.push(Part::Literal(Bytes::from(head)));
        parts.push(Part::File(r.clone()));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    total += tail.len() as u64;
    parts.push(Part::Literal(Bytes::from(tail)));
    (parts, total)
}

struct Reader {
    file: tokio::fs::File,
    parts: VecDeque<Part>,
    /// The file range being read, if one is under way.
    current: Option<Range<u64>>,
    tracker: Arc<Inner>,
}

impl Reader {
    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            if let Some(range) = self.current.as_mut().filter(|r| r.start < r.end) {
                let want = usize::try_from(range.end - range.start)
                    .unwrap_or(CHUNK)
                    .min(CHUNK);
                let mut buf = BytesMut::zeroed(want);
                let mut filled = 0;
                while filled < want {
                    match self.file.read(&mut buf[filled..]).await {
                        Ok(0) => {
                            let eof = std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "file shrank",
                            );
                            return Some(Err(eof));
                        }
                        Ok(n) => filled += n,
                        Err(e) => return Some(Err(e)),
                    }
                }
                range.start += want as u64;
                add(&self.tracker.metrics.origin_bytes, want as u64);
                return Some(Ok(buf.freeze()));
            }
            match self.parts.pop_front()? {
                Part::Literal(bytes) => return Some(Ok(bytes)),
                Part::File(range) => {
                    if let Err(e) = self.file.seek(SeekFrom::Start(range.start)).await {
                        return Some(Err(e));
                    }
                    self.current = Some(range);
                }
            }
        }
    }
}

/// A body streaming `parts` of the file at `path`.
pub(crate) async fn file_body(
    path: &Path,
    parts: Vec<Part>,
    tracker: Arc<Inner>,
) -> std::io::Result<Body> {
    let file = tokio::fs::File::open(path).await?;
    let reader = Reader {
        file,
        parts: parts.into(),
        current: None,
        tracker,
    };
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let chunk = reader.next_chunk().await?;
        Some((chunk, reader))
    });
    Ok(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_length_counts_every_byte() {
        let (parts, total) = multipart(&[0..2, 5..10], 10, "video/webm", "B");
        let mut counted = 0u64;
        for part in &parts {
            counted += match part {
                Part::Literal(b) => b.len() as u64,
                Part::File(r) => r.end - r.start,
            };
        }
        assert_eq!(counted, total);
        assert_eq!(parts.len(), 5);
    }
}
