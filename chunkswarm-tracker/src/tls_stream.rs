//! The server side of a TLS connection on rustls's unbuffered API: a stream
//! that holds no buffer while idle.
//!
//! rustls's buffered connection (the one tokio-rustls drives) keeps a 4 KiB
//! receive buffer from the first record to the end, a quarter of an idle
//! `wss://` connection's memory. This stream reads into a buffer on the
//! stack, decrypts the complete records in place there, and keeps on the
//! heap only what is pending: the start of a record still arriving,
//! decrypted bytes not read yet, encrypted bytes the socket has not taken.
//! Each is freed once emptied.
//!
//! Writes are encrypted at once and sent; a write waits until the previous
//! one left, so at most one write's worth of bytes is held.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::listener::Attach;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::server::UnbufferedServerConnection;
use tokio_rustls::rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError,
};

/// A TLS record's header: type, version and the length of what follows.
const RECORD_HEADER: usize = 5;
/// Bytes read from the socket at once: the largest TLS record (16 KiB of
/// data, its header and the most expansion TLS allows).
const READ_CHUNK: usize = RECORD_HEADER + (1 << 14) + 256;
/// The most plaintext one write takes (the caller writes the rest next).
const MAX_WRITE: usize = 64 << 10;
/// Room for a record's header, content type and tag.
const RECORD_OVERHEAD: usize = 5 + 1 + 16;

/// A TLS connection to a client over TCP, after its handshake. `Io` is a
/// tokio socket, or a plain one while the connection moves between runtimes
/// ([`TlsStream::detach`], [`Attach`]).
pub(crate) struct TlsStream<Io = TcpStream> {
    io: Io,
    conn: UnbufferedServerConnection,
    /// Received bytes of a record not complete yet.
    incoming: Vec<u8>,
    /// Decrypted bytes and how many of them were read.
    plaintext: Vec<u8>,
    plaintext_read: usize,
    /// Encrypted bytes and how many of them the socket took.
    outgoing: Vec<u8>,
    outgoing_sent: usize,
    /// The client closed: its `close_notify`, or the socket's end.
    eof: bool,
    /// Our `close_notify` is queued.
    closing: bool,
}

impl<Io: fmt::Debug> fmt::Debug for TlsStream<Io> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("io", &self.io)
            .field("incoming", &self.incoming.len())
            .field("plaintext", &(self.plaintext.len() - self.plaintext_read))
            .field("outgoing", &(self.outgoing.len() - self.outgoing_sent))
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

fn tls_error(e: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Where [`drive`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Nothing to do until more bytes arrive (or, after the handshake, the
    /// caller may write).
    NeedData,
    /// The connection is closed both ways.
    Closed,
}

/// Runs the connection over `records` (received bytes) as far as it goes:
/// decrypted data goes to `out` while it has room and nothing waits before
/// it in `plaintext`, the rest to `plaintext`; bytes to send to `outgoing`.
/// Returns how many bytes of `records` were used up, and why it stopped.
fn drive(
    conn: &mut UnbufferedServerConnection,
    records: &mut [u8],
    mut out: Option<&mut ReadBuf<'_>>,
    plaintext: &mut Vec<u8>,
    outgoing: &mut Vec<u8>,
    eof: &mut bool,
) -> io::Result<(usize, Stop)> {
    let mut used = 0;
    loop {
        let status = conn.process_tls_records(&mut records[used..]);
        let mut discard = status.discard;
        let stop = match status.state.map_err(tls_error)? {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(tls_error)?;
                    discard += record.discard;
                    let mut payload = record.payload;
                    if let Some(out) = out.as_deref_mut().filter(|_| plaintext.is_empty()) {
                        let n = payload.len().min(out.remaining());
                        out.put_slice(&payload[..n]);
                        payload = &payload[n..];
                    }
                    plaintext.extend_from_slice(payload);
                }
                None
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                let start = outgoing.len();
                let mut room = 1024;
                loop {
                    outgoing.resize(start + room, 0);
                    match encode.encode(&mut outgoing[start..]) {
                        Ok(written) => {
                            outgoing.truncate(start + written);
                            break;
                        }
                        Err(EncodeError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => room = required_size,
                        Err(e) => {
                            outgoing.truncate(start);
                            return Err(tls_error(e));
                        }
                    }
                }
                None
            }
            // The caller sends `outgoing` before it waits for anything.
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                None
            }
            ConnectionState::PeerClosed => {
                *eof = true;
                None
            }
            ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => {
                Some(Stop::NeedData)
            }
            ConnectionState::Closed => {
                *eof = true;
                Some(Stop::Closed)
            }
            // No early data is accepted (the configuration allows none).
            other => return Err(tls_error(format!("unexpected TLS state {other:?}"))),
        };
        used += discard;
        if let Some(stop) = stop {
            return Ok((used, stop));
        }
    }
}

/// Completes the TLS handshake of a client on `io`.
pub(crate) async fn accept(io: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
    let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    let mut stream = TlsStream {
        io,
        conn,
        incoming: Vec::new(),
        plaintext: Vec::new(),
        plaintext_read: 0,
        outgoing: Vec::new(),
        outgoing_sent: 0,
        eof: false,
        closing: false,
    };
    poll_fn(|cx| stream.poll_handshake(cx)).await?;
    Ok(stream)
}

impl<Io> TlsStream<Io> {
    /// The same connection over what `f` makes of its socket.
    fn map_io<J>(self, f: impl FnOnce(Io) -> io::Result<J>) -> io::Result<TlsStream<J>> {
        Ok(TlsStream {
            io: f(self.io)?,
            conn: self.conn,
            incoming: self.incoming,
            plaintext: self.plaintext,
            plaintext_read: self.plaintext_read,
            outgoing: self.outgoing,
            outgoing_sent: self.outgoing_sent,
            eof: self.eof,
            closing: self.closing,
        })
    }
}

impl TlsStream {
    /// Detaches the socket from the runtime it was accepted on, to be
    /// [attached](Attach::attach) to another.
    pub(crate) fn detach(self) -> io::Result<TlsStream<std::net::TcpStream>> {
        self.map_io(TcpStream::into_std)
    }
}

impl Attach for TlsStream<std::net::TcpStream> {
    type Io = TlsStream;

    fn attach(self) -> io::Result<TlsStream> {
        self.map_io(TcpStream::from_std)
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> TlsStream<Io> {
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx))?;
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            ready!(self.poll_receive(cx, None))?;
        }
    }

    /// Sends the encrypted bytes waiting; frees their buffer once sent.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.outgoing_sent < self.outgoing.len() {
            let rest = &self.outgoing[self.outgoing_sent..];
            let sent = ready!(Pin::new(&mut self.io).poll_write(cx, rest))?;
            if sent == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing_sent += sent;
        }
        if self.outgoing.capacity() > 0 {
            self.outgoing = Vec::new();
            self.outgoing_sent = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads once from the socket and runs the connection over what came;
    /// decrypted data goes to `out` as far as it takes it.
    fn poll_receive(
        &mut self,
        cx: &mut Context<'_>,
        out: Option<&mut ReadBuf<'_>>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let wanted = if self.conn.is_handshaking() {
            self.rest_of_record()
        } else {
            READ_CHUNK
        };
        let mut read = ReadBuf::new(&mut chunk[..wanted]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        if n == 0 {
            self.eof = true;
            if !self.incoming.is_empty() {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            return Poll::Ready(Ok(()));
        }
        let fresh = &mut chunk[..n];
        if self.incoming.is_empty() {
            // The common case: whole records, decrypted where they landed.
            let (used, _) = drive(
                &mut self.conn,
                fresh,
                out,
                &mut self.plaintext,
                &mut self.outgoing,
                &mut self.eof,
            )?;
            self.incoming.extend_from_slice(&fresh[used..]);
        } else {
            self.incoming.extend_from_slice(fresh);
            self.drive_incoming(out)?;
        }
        Poll::Ready(Ok(()))
    }

    /// How many bytes complete the record (or its header) being received.
    ///
    /// The handshake reads no further: what the client sends right after
    /// its Finished (its HTTP request) stays on the socket for the serving
    /// thread. Decrypted on the admission thread, into a buffer the serving
    /// thread frees, it grew the admission thread's malloc arena for every
    /// connection (glibc keeps the freed buffer in the freeing thread's
    /// cache); the README's `tracker_load` figures say by how much.
    fn rest_of_record(&self) -> usize {
        let wanted = match self.incoming.get(3..RECORD_HEADER) {
            Some(&[high, low]) => RECORD_HEADER + usize::from(u16::from_be_bytes([high, low])),
            _ => RECORD_HEADER,
        };
        wanted
            .saturating_sub(self.incoming.len())
            .clamp(1, READ_CHUNK)
    }

    /// Runs the connection over the bytes kept from earlier reads, keeping
    /// only what it did not use (and no buffer at all once that is none).
    fn drive_incoming(&mut self, out: Option<&mut ReadBuf<'_>>) -> io::Result<Stop> {
        let (used, stop) = drive(
            &mut self.conn,
            &mut self.incoming,
            out,
            &mut self.plaintext,
            &mut self.outgoing,
            &mut self.eof,
        )?;
        self.incoming.drain(..used);
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        Ok(stop)
    }

    /// Encrypts `data` into `outgoing`.
    fn encrypt(&mut self, data: &[u8]) -> io::Result<()> {
        let mut no_records = [0u8; 0];
        let status = self.conn.process_tls_records(&mut no_records);
        let mut traffic = match status.state.map_err(tls_error)? {
            ConnectionState::WriteTraffic(traffic) => traffic,
            ConnectionState::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
            other => return Err(tls_error(format!("cannot write in TLS state {other:?}"))),
        };
        let start = self.outgoing.len();
        let records = data.len() / (1 << 14) + 1;
        // A key update may go first.
        let mut room = data.len() + records * RECORD_OVERHEAD + 64;
        loop {
            self.outgoing.resize(start + room, 0);
            match traffic.encrypt(data, &mut self.outgoing[start..]) {
                Ok(written) => {
                    self.outgoing.truncate(start + written);
                    return Ok(());
                }
                Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    room = required_size;
                }
                Err(e) => {
                    self.outgoing.truncate(start);
                    return Err(tls_error(e));
                }
            }
        }
    }

    /// Lets the connection do what it has to before application data goes
    /// out (e.g. answer a key update), then whether it can take some.
    fn settle(&mut self) -> io::Result<Stop> {
        self.drive_incoming(None)
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let waiting = &this.plaintext[this.plaintext_read..];
            if !waiting.is_empty() {
                let n = waiting.len().min(buf.remaining());
                buf.put_slice(&waiting[..n]);
                this.plaintext_read += n;
                if this.plaintext_read == this.plaintext.len() {
                    this.plaintext = Vec::new();
                    this.plaintext_read = 0;
                }
                return Poll::Ready(Ok(()));
            }
            // What the connection itself sends (a ticket, a key update)
            // goes out as the socket takes it; reading does not wait on it.
            if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            ready!(this.poll_receive(cx, Some(buf)))?;
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.closing || this.settle()? == Stop::Closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let data = &data[..data.len().min(MAX_WRITE)];
        this.encrypt(data)?;
        // Sent now as far as the socket takes it; the rest before the next
        // write, or at the flush.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if !this.closing {
            this.closing = true;
            if this.settle()? == Stop::NeedData {
                let mut no_records = [0u8; 0];
                let status = this.conn.process_tls_records(&mut no_records);
                if let Ok(ConnectionState::WriteTraffic(mut traffic)) = status.state {
                    let mut alert = [0u8; 64];
                    let written = traffic.queue_close_notify(&mut alert).map_err(tls_error)?;
                    this.outgoing.extend_from_slice(&alert[..written]);
                }
            }
            ready!(this.poll_send(cx))?;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    use super::*;

    struct Pair {
        server: TlsStream,
        client: tokio_rustls::client::TlsStream<TcpStream>,
    }

    async fn listener() -> (TcpListener, SocketAddr, Arc<ServerConfig>, ClientConfig) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let server = crate::tls::server_config(&cert, &key).unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(certified.cert.der().to_vec()))
            .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        (tcp, addr, server, client)
    }

    async fn pair() -> Pair {
        let (tcp, addr, server, client) = listener().await;
        let accepted = tokio::spawn(async move {
            let (io, _) = tcp.accept().await.unwrap();
            accept(io, server).await.unwrap()
        });
        let io = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let client = TlsConnector::from(Arc::new(client))
            .connect(name, io)
            .await
            .unwrap();
        Pair {
            server: accepted.await.unwrap(),
            client,
        }
    }

    fn idle(stream: &TlsStream) -> bool {
        stream.incoming.capacity() == 0
            && stream.plaintext.capacity() == 0
            && stream.outgoing.capacity() == 0
    }

    #[tokio::test]
    async fn data_crosses_both_ways_and_an_idle_stream_holds_no_buffer() {
        let Pair {
            mut server,
            mut client,
        } = pair().await;
        // More than a record and more than a read, both ways.
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                client.write_all(&sent).await.unwrap();
                client.flush().await.unwrap();
                let mut back = vec![0u8; sent.len()];
                client.read_exact(&mut back).await.unwrap();
                (client, back)
            })
        };
        let mut got = vec![0u8; sent.len()];
        server.read_exact(&mut got).await.unwrap();
        assert!(got == sent);
        server.write_all(&got).await.unwrap();
        server.flush().await.unwrap();
        let (mut client, back) = writer.await.unwrap();
        assert!(back == sent);
        assert!(idle(&server), "{server:?}");

        // Small messages, as signaling sends them.
        for n in 0..20u8 {
            client.write_all(&[n; 300]).await.unwrap();
            client.flush().await.unwrap();
            let mut message = [0u8; 300];
            server.read_exact(&mut message).await.unwrap();
            assert_eq!(message, [n; 300]);
            server.write_all(&message[..100]).await.unwrap();
            server.flush().await.unwrap();
            client.read_exact(&mut message[..100]).await.unwrap();
        }
        assert!(idle(&server), "{server:?}");

        // Our close_notify ends the client's reading cleanly.
        server.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn what_the_client_sends_with_its_finished_is_left_for_the_serving_thread() {
        let (tcp, addr, server, client) = listener().await;
        let accepted = tokio::spawn(async move {
            let (io, _) = tcp.accept().await.unwrap();
            accept(io, server).await.unwrap()
        });
        // The client talks through a relay that holds its Finished back
        // until its request follows, so that both reach the server at once.
        let (client_io, relay) = tokio::io::duplex(1 << 16);
        let (mut from_client, mut to_client) = tokio::io::split(relay);
        let (mut from_server, mut to_server) = TcpStream::connect(addr).await.unwrap().into_split();
        tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
        let connecting = tokio::spawn(async move {
            let name = ServerName::try_from("localhost").unwrap();
            TlsConnector::from(Arc::new(client))
                .connect(name, client_io)
                .await
                .unwrap()
        });
        let mut held = vec![0u8; 1 << 16];
        let n = from_client.read(&mut held).await.unwrap(); // its hello
        to_server.write_all(&held[..n]).await.unwrap();
        let mut client = connecting.await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        client.flush().await.unwrap();
        let n = from_client.read(&mut held).await.unwrap(); // Finished and request
        to_server.write_all(&held[..n]).await.unwrap();

        let mut server = accepted.await.unwrap();
        assert!(idle(&server), "{server:?}");
        let mut request = [0u8; 18];
        server.read_exact(&mut request).await.unwrap();
        assert_eq!(&request, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_client_that_closes_is_read_to_its_end() {
        let Pair {
            mut server,
            mut client,
        } = pair().await;
        client.write_all(b"last words").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
    }

    #[tokio::test]
    async fn bytes_that_are_not_tls_fail_the_handshake() {
        let (tcp, addr, server, _) = listener().await;
        let accepted = tokio::spawn(async move {
            let (io, _) = tcp.accept().await.unwrap();
            accept(io, server).await
        });
        let mut io = TcpStream::connect(addr).await.unwrap();
        io.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(accepted.await.unwrap().is_err());
        // And a client that hangs up mid-handshake.
        let (tcp, addr, server, _) = listener().await;
        let accepted = tokio::spawn(async move {
            let (io, _) = tcp.accept().await.unwrap();
            accept(io, server).await
        });
        drop(TcpStream::connect(addr).await.unwrap());
        assert!(accepted.await.unwrap().is_err());
    }
}
