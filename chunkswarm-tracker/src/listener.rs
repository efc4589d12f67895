//! A listener that prepares each accepted connection in its own task, with a
//! deadline, before axum sees it: the PROXY protocol header of a trusted
//! load balancer, the TLS handshake. A client that connects and stalls
//! holds up no one else's accept.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::proxy::{IpCidr, is_trusted};
use crate::proxy_protocol;

/// Connections being prepared at once; more wait in the kernel's backlog.
const MAX_PREPARING: usize = 1024;

/// Connections whose preparation finished, with the client's address.
#[derive(Debug)]
pub(crate) struct Admitting<Io> {
    ready: mpsc::Receiver<(Io, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl<Io: Send + 'static> Admitting<Io> {
    /// Starts accepting on `listener`; `prepare` turns each connection into
    /// what axum serves, or `None` to drop it, within `timeout`. Must be
    /// called inside a runtime.
    pub(crate) fn new<P, F>(
        listener: TcpListener,
        timeout: Duration,
        prepare: P,
    ) -> io::Result<Self>
    where
        P: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Option<(Io, SocketAddr)>> + Send + 'static,
    {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(listener, timeout, prepare, tx));
        Ok(Self {
            ready,
            local,
            acceptor,
        })
    }
}

impl<Io> Drop for Admitting<Io> {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop<Io, P, F>(
    listener: TcpListener,
    timeout: Duration,
    prepare: P,
    ready: mpsc::Sender<(Io, SocketAddr)>,
) where
    Io: Send + 'static,
    P: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = Option<(Io, SocketAddr)>> + Send + 'static,
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

impl<Io> axum::serve::Listener for Admitting<Io>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
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
