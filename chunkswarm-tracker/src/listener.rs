//! A listener that prepares each accepted connection in its own task, with a
//! deadline, before axum sees it: the PROXY protocol header of a trusted
//! load balancer, the TLS handshake. A client that connects and stalls
//! holds up no one else's accept, and accepting runs on a thread of its own
//! ([`Admitting`]), so a busy tracker still accepts and shakes hands at once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs, lookup_host};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::proxy::{IpCidr, is_trusted};
use crate::proxy_protocol;

/// Connections being prepared at once; more wait in the kernel's backlog.
const MAX_PREPARING: usize = 1024;

/// The kernel's queue of connections not accepted yet (capped by
/// `net.core.somaxconn`). A full queue drops a client's SYN, which it sends
/// again only 1, 3, 7, 15 s later: under load, with connections arriving
/// faster than a busy tracker accepts them for a moment, 128 (what
/// `TcpListener::bind` asks for) was full and handshakes took seconds.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener on `addr` (the first of its addresses that binds) with a
/// backlog of [`LISTEN_BACKLOG`]. Use it rather than `TcpListener::bind` for
/// [`serve`](crate::serve).
pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

/// A connection prepared on the admission thread, its socket detached from
/// that thread's runtime: attached to the serving runtime as axum takes it.
pub(crate) trait Attach: Send + 'static {
    /// What axum serves.
    type Io;
    /// Registers the socket with the current runtime.
    fn attach(self) -> io::Result<Self::Io>;
}

impl Attach for std::net::TcpStream {
    type Io = TcpStream;

    fn attach(self) -> io::Result<TcpStream> {
        TcpStream::from_std(self)
    }
}

/// Connections whose preparation finished, with the client's address.
///
/// Accepting and preparing run on a thread of their own (a single-threaded
/// runtime), not among the connections being served: on a loaded tracker
/// each of the serving runtime's tasks waits for every other ready one, a
/// tenth of a second or more per round, and a TLS handshake takes several
/// rounds (measured 0.5 to 1.4 s for a handshake alone under aquatic's load
/// tester, and the listen queue filled). The kernel runs the admission
/// thread as soon as a connection needs it, so a handshake takes its own
/// time, whatever the load.
#[derive(Debug)]
pub(crate) struct Admitting<A> {
    ready: mpsc::Receiver<(A, SocketAddr)>,
    local: SocketAddr,
    /// Dropped to stop the admission thread.
    _stop: oneshot::Sender<()>,
}

impl<A: Attach> Admitting<A> {
    /// Starts accepting on `listener` on the admission thread; `prepare`
    /// turns each connection into what axum serves (detached), or `None` to
    /// drop it, within `timeout`.
    pub(crate) fn new<P, F>(
        listener: TcpListener,
        timeout: Duration,
        prepare: P,
    ) -> io::Result<Self>
    where
        P: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Option<(A, SocketAddr)>> + Send + 'static,
    {
        let local = listener.local_addr()?;
        let listener = listener.into_std()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, ready) = mpsc::channel(64);
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tracker-admission".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot accept connections");
                            return;
                        }
                    };
                    tokio::select! {
                        () = accept_loop(listener, timeout, prepare, tx) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Self {
            ready,
            local,
            _stop: stop,
        })
    }
}

async fn accept_loop<A, P, F>(
    listener: TcpListener,
    timeout: Duration,
    prepare: P,
    ready: mpsc::Sender<(A, SocketAddr)>,
) where
    A: Send + 'static,
    P: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = Option<(A, SocketAddr)>> + Send + 'static,
{
    let preparing = Arc::new(Semaphore::new(MAX_PREPARING));
    loop {
        let Ok(permit) = Arc::clone(&preparing).acquire_owned().await else {
            return;
        };
        let (tcp, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let prepared = prepare(tcp, addr);
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, prepared).await {
                Ok(Some(connection)) => {
                    drop(permit);
                    let _ = ready.send(connection).await;
                }
                Ok(None) => {}
                Err(_) => tracing::debug!(%addr, "connection not ready in time"),
            }
        });
    }
}

impl<A> axum::serve::Listener for Admitting<A>
where
    A: Attach,
    A::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = A::Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some((prepared, addr)) = self.ready.recv().await else {
                return std::future::pending().await;
            };
            match prepared.attach() {
                Ok(io) => return (io, addr),
                Err(e) => tracing::warn!(%addr, error = %e, "cannot serve a connection"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client's address of a connection from `peer`: read from its PROXY
/// protocol header if `peer` is a trusted proxy and the protocol is on
/// (a trusted proxy's connection without a valid header is dropped).
pub(crate) async fn client_of(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    proxies: &[IpCidr],
    proxy_protocol: bool,
) -> Option<SocketAddr> {
    if !proxy_protocol || !is_trusted(proxies, peer.ip()) {
        return Some(peer);
    }
    match proxy_protocol::read(tcp).await {
        Ok(source) => Some(source.unwrap_or(peer)),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "connection from a trusted proxy refused");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn the_listen_queue_holds_hundreds_of_connections_not_yet_accepted() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Never accepted: each must still connect at once. With a queue of
        // 128 the rest would wait for their SYN to be sent again (1 s on).
        let connects = (0..300).map(|_| TcpStream::connect(addr));
        let all = futures_util::future::try_join_all(connects);
        let connected = tokio::time::timeout(Duration::from_millis(900), all)
            .await
            .expect("connections waited: the listen queue is short")
            .unwrap();
        assert_eq!(connected.len(), 300);
        drop(listener);
    }

    #[tokio::test]
    async fn an_address_that_does_not_resolve_is_an_error() {
        assert!(bind("no-such-host.invalid:80").await.is_err());
    }
}
