//! The server side of RFC 6455 WebSockets, for signaling: the opening
//! handshake's answer, a reader of client frames and a writer of server
//! frames, holding no buffer while idle.
//!
//! The reader reads into a buffer on the stack and unmasks complete frames
//! there; only the start of a frame still arriving, or the fragments of a
//! message not complete yet, are kept on the heap, and freed once used. The
//! writer builds a batch of frames in one buffer, writes it and frees it.
//! No extension is negotiated; frames from the client must be masked, and
//! a message over the size limit is refused as soon as its length is known.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};

/// Appended to the client's key for `Sec-WebSocket-Accept` (RFC 6455 1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 8 << 10;
/// The longest control frame payload.
const MAX_CONTROL: usize = 125;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A text message's bytes, valid UTF-8.
///
/// Checked with `simdutf8` where it is read: WebTorrent's ids are strings of
/// chars up to U+00FF, half of them outside ASCII, and the standard library's
/// check goes byte by byte over those (7% of the tracker's time under
/// aquatic's load tester). Without `unsafe` the bytes cannot become a
/// `String` unchecked, so [`Text::as_str`] checks them again, just as fast.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Text(Vec<u8>);

impl Text {
    /// The bytes, if they are UTF-8.
    fn new(bytes: Vec<u8>) -> Option<Self> {
        simdutf8::basic::from_utf8(&bytes)
            .is_ok()
            .then_some(Self(bytes))
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // Checked in `new`: never the empty default.
        simdutf8::basic::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A text message.
    Text(Text),
    /// A binary message (its content is not kept).
    Binary,
    /// A ping, whose payload the pong echoes.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// The client closes, with its status code if it gave one.
    Close(Option<u16>),
}

/// Why reading from the client failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// A message longer than the limit.
    #[error("message too big")]
    TooBig,
    /// A frame RFC 6455 does not allow here.
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text message that is not UTF-8.
    #[error("text message is not UTF-8")]
    NotUtf8,
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ReadError {
    /// The close code to answer with (RFC 6455 7.4.1), if the connection
    /// can still be written to.
    pub(crate) fn close_code(&self) -> Option<u16> {
        match self {
            Self::TooBig => Some(1009),
            Self::Protocol(_) => Some(1002),
            Self::NotUtf8 => Some(1007),
            Self::Io(_) => None,
        }
    }
}

/// One frame's header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header length in bytes.
    len: usize,
    payload: usize,
}

/// Reads the header at the start of `buf`: `None` if incomplete.
fn header(buf: &[u8], max: usize, assembled: usize) -> Result<Option<Header>, ReadError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(ReadError::Protocol("reserved bits set"));
    }
    if b1 & 0x80 == 0 {
        return Err(ReadError::Protocol("client frame not masked"));
    }
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
    let (payload, at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => (usize::from(u16::from_be_bytes([a, b])), 4),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let n = u64::from_be_bytes(be);
                (usize::try_from(n).unwrap_or(usize::MAX), 10)
            }
            None => return Ok(None),
        },
        n => (usize::from(n), 2),
    };
    if opcode >= OP_CLOSE {
        if !fin || payload > MAX_CONTROL {
            return Err(ReadError::Protocol("bad control frame"));
        }
    } else if payload > max.saturating_sub(assembled) {
        return Err(ReadError::TooBig);
    }
    let Some(&[m0, m1, m2, m3]) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: [m0, m1, m2, m3],
        len: at + 4,
        payload,
    }))
}

/// Reads client messages from `io`.
#[derive(Debug)]
pub(crate) struct Reader<R> {
    io: R,
    max: usize,
    /// The start of a frame still arriving.
    partial: Vec<u8>,
    /// The opcode and the fragments so far of a fragmented message.
    fragmented: Option<(u8, Vec<u8>)>,
    /// Messages read but not taken yet.
    ready: VecDeque<Incoming>,
    ended: bool,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// A reader refusing messages over `max` bytes.
    pub(crate) fn new(io: R, max: usize) -> Self {
        Self {
            io,
            max,
            partial: Vec::new(),
            fragmented: None,
            ready: VecDeque::new(),
            ended: false,
        }
    }

    /// The next message; `None` once the client is gone.
    pub(crate) async fn next(&mut self) -> Option<Result<Incoming, ReadError>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, ReadError>>> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                if self.ready.is_empty() {
                    self.ready = VecDeque::new();
                }
                return Poll::Ready(Some(Ok(message)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            if let Err(e) = ready!(Pin::new(&mut self.io).poll_read(cx, &mut read)) {
                self.ended = true;
                return Poll::Ready(Some(Err(e.into())));
            }
            let n = read.filled().len();
            if n == 0 {
                self.ended = true;
                continue;
            }
            if let Err(e) = self.absorb(&mut chunk[..n]) {
                self.ended = true;
                self.ready = VecDeque::new();
                return Poll::Ready(Some(Err(e)));
            }
        }
    }

    /// The messages read and not taken yet.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn take_ready(&mut self) -> VecDeque<Incoming> {
        std::mem::take(&mut self.ready)
    }

    /// Takes the frames complete in `fresh` (after what `partial` holds).
    pub(crate) fn absorb(&mut self, fresh: &mut [u8]) -> Result<(), ReadError> {
        if self.partial.is_empty() {
            let used = self.frames(fresh)?;
            self.partial.extend_from_slice(&fresh[used..]);
        } else {
            let mut partial = std::mem::take(&mut self.partial);
            partial.extend_from_slice(fresh);
            let used = self.frames(&mut partial)?;
            partial.drain(..used);
            if !partial.is_empty() {
                self.partial = partial;
            }
        }
        Ok(())
    }

    /// Handles the complete frames at the start of `buf`; returns the bytes
    /// they took.
    fn frames(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut used = 0;
        loop {
            let assembled = self.fragmented.as_ref().map_or(0, |(_, f)| f.len());
            let Some(h) = header(&buf[used..], self.max, assembled)? else {
                return Ok(used);
            };
            let end = used + h.len + h.payload;
            if buf.len() < end {
                return Ok(used);
            }
            let payload = &mut buf[used + h.len..end];
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= h.mask[i % 4];
            }
            used = end;
            if self.ended {
                continue;
            }
            let message = match (h.opcode, self.fragmented.take()) {
                (OP_CLOSE, fragmented) => {
                    self.fragmented = fragmented;
                    self.ended = true;
                    let code = match *payload {
                        [a, b, ..] => Some(u16::from_be_bytes([a, b])),
                        _ => None,
                    };
                    Some(Incoming::Close(code))
                }
                (OP_PING, fragmented) => {
                    self.fragmented = fragmented;
                    Some(Incoming::Ping(payload.to_vec()))
                }
                (OP_PONG, fragmented) => {
                    self.fragmented = fragmented;
                    Some(Incoming::Pong)
                }
                (OP_TEXT | OP_BINARY, Some(_)) => {
                    return Err(ReadError::Protocol("new message inside a fragmented one"));
                }
                (OP_TEXT | OP_BINARY, None) if h.fin => Some(complete(h.opcode, payload.to_vec())?),
                (OP_TEXT | OP_BINARY, None) => {
                    self.fragmented = Some((h.opcode, payload.to_vec()));
                    None
                }
                (OP_CONTINUATION, Some((opcode, mut fragments))) => {
                    fragments.extend_from_slice(payload);
                    if h.fin {
                        Some(complete(opcode, fragments)?)
                    } else {
                        self.fragmented = Some((opcode, fragments));
                        None
                    }
                }
                (OP_CONTINUATION, None) => {
                    return Err(ReadError::Protocol("continuation without a message"));
                }
                _ => return Err(ReadError::Protocol("unknown opcode")),
            };
            if let Some(message) = message {
                self.ready.push_back(message);
            }
        }
    }
}

fn complete(opcode: u8, payload: Vec<u8>) -> Result<Incoming, ReadError> {
    if opcode == OP_BINARY {
        return Ok(Incoming::Binary);
    }
    Text::new(payload)
        .map(Incoming::Text)
        .ok_or(ReadError::NotUtf8)
}

/// Appends one unmasked server frame.
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a text message's frame to `out`.
pub(crate) fn push_text(out: &mut Vec<u8>, text: &str) {
    push_frame(out, OP_TEXT, text.as_bytes());
}

/// Writes server frames to `io`.
#[derive(Debug)]
pub(crate) struct Writer<W> {
    io: W,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub(crate) fn new(io: W) -> Self {
        Self { io }
    }

    /// Writes `frames` (made with [`push_text`]) and flushes.
    pub(crate) async fn send(&mut self, frames: &[u8]) -> io::Result<()> {
        self.io.write_all(frames).await?;
        self.io.flush().await
    }

    /// Answers a ping.
    pub(crate) async fn send_pong(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 2);
        push_frame(
            &mut out,
            OP_PONG,
            &payload[..payload.len().min(MAX_CONTROL)],
        );
        self.io.write_all(&out).await?;
        self.io.flush().await
    }

    /// Sends a close frame with `code` and `reason`, then shuts the
    /// sending side down.
    pub(crate) async fn close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        let mut payload = code.to_be_bytes().to_vec();
        let reason = &reason.as_bytes()[..reason.len().min(MAX_CONTROL - 2)];
        payload.extend_from_slice(reason);
        let mut out = Vec::with_capacity(payload.len() + 2);
        push_frame(&mut out, OP_CLOSE, &payload);
        self.io.write_all(&out).await?;
        self.io.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::AsyncReadExt as _;

    use super::*;

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    async fn read_all(bytes: Vec<u8>, max: usize, split: usize) -> Vec<Result<Incoming, String>> {
        let (mut client, server) = tokio::io::duplex(64 << 10);
        let writer = tokio::spawn(async move {
            for piece in bytes.chunks(split.max(1)) {
                client.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut reader = Reader::new(server, max);
        let mut got = Vec::new();
        while let Some(message) = reader.next().await {
            let failed = message.is_err();
            got.push(message.map_err(|e| e.to_string()));
            if failed {
                break;
            }
        }
        writer.await.unwrap();
        got
    }

    #[test]
    fn random_bytes_read_alike_however_split() {
        let mut rng = fastrand::Rng::with_seed(13);
        for _ in 0..2000 {
            let len = rng.usize(0..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if rng.bool() && !bytes.is_empty() {
                // Mostly well-formed: a masked frame header first.
                bytes[0] = 0x80 | rng.u8(0..3);
                bytes.insert(1, 0x80 | rng.u8(0..20));
            }
            let split = rng.usize(0..=bytes.len());
            crate::signaling::fuzz_websocket_frames(&bytes, split, 40);
        }
    }

    #[test]
    fn the_accept_key_is_rfc_6455s_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[tokio::test]
    async fn messages_arrive_whole_however_the_bytes_are_split() {
        let long = "x".repeat(70_000);
        let mut bytes = client_frame(true, OP_TEXT, b"hello");
        bytes.extend(client_frame(false, OP_TEXT, "wo".as_bytes()));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(true, OP_CONTINUATION, "rld \u{e9}".as_bytes()));
        bytes.extend(client_frame(true, OP_TEXT, long.as_bytes()));
        bytes.extend(client_frame(true, OP_TEXT, &[b'y'; 300]));
        bytes.extend(client_frame(true, OP_BINARY, &[0, 1]));
        bytes.extend(client_frame(true, OP_CLOSE, &1000u16.to_be_bytes()));
        bytes.extend(client_frame(true, OP_TEXT, b"after close"));
        let want = vec![
            Ok(Incoming::Text("hello".into())),
            Ok(Incoming::Ping(b"p".to_vec())),
            Ok(Incoming::Text("world \u{e9}".into())),
            Ok(Incoming::Text(long.into())),
            Ok(Incoming::Text("y".repeat(300).into())),
            Ok(Incoming::Binary),
            Ok(Incoming::Close(Some(1000))),
        ];
        for split in [1, 3, 7, 100, 5000, 1 << 20] {
            assert_eq!(
                read_all(bytes.clone(), 100_000, split).await,
                want,
                "{split}"
            );
        }
    }

    #[tokio::test]
    async fn bad_frames_are_errors_not_panics() {
        let too_big = client_frame(true, OP_TEXT, &[b'a'; 101]);
        let mut fragments_too_big = client_frame(false, OP_TEXT, &[b'a'; 60]);
        fragments_too_big.extend(client_frame(true, OP_CONTINUATION, &[b'a'; 60]));
        let mut unmasked = client_frame(true, OP_TEXT, b"hi");
        unmasked[1] &= 0x7f;
        let mut reserved = client_frame(true, OP_TEXT, b"hi");
        reserved[0] |= 0x40;
        let huge_length = [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (too_big, "message too big"),
            (fragments_too_big, "message too big"),
            (huge_length.to_vec(), "message too big"),
            (unmasked, "not masked"),
            (reserved, "reserved bits"),
            (client_frame(true, 0x3, b""), "unknown opcode"),
            (client_frame(false, OP_PING, b""), "control frame"),
            (client_frame(true, OP_PING, &[0; 126]), "control frame"),
            (client_frame(true, OP_CONTINUATION, b"x"), "continuation"),
            (client_frame(true, OP_TEXT, &[0xff, 0xfe]), "UTF-8"),
        ];
        for (bytes, want) in cases {
            let got = read_all(bytes, 100, 3).await;
            let last = got.last().unwrap().clone().unwrap_err();
            assert!(last.contains(want), "{last} / {want}");
        }
        // A client that hangs up mid-frame just ends.
        let cut = client_frame(true, OP_TEXT, b"cut short");
        assert!(read_all(cut[..5].to_vec(), 100, 2).await.is_empty());
    }

    #[tokio::test]
    async fn server_frames_are_what_a_client_reads() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut writer = Writer::new(server);
        let mut frames = Vec::new();
        for text in ["a".to_owned(), "b".repeat(200), "c".repeat(70_000)] {
            push_text(&mut frames, &text);
        }
        writer.send(&frames).await.unwrap();
        writer.send_pong(b"p").await.unwrap();
        writer.close(1000, "bye").await.unwrap();
        let mut bytes = Vec::new();
        let mut client = client;
        client.read_to_end(&mut bytes).await.unwrap();
        let mut want = vec![0x81, 1, b'a', 0x81, 126, 0, 200];
        want.extend_from_slice(&[b'b'; 200]);
        want.extend_from_slice(&[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        want.extend_from_slice(&[b'c'; 70_000]);
        want.extend_from_slice(&[0x8a, 1, b'p', 0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
        assert!(bytes == want);
    }
}
