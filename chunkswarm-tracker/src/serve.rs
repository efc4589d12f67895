//! Serving a [`Tracker`] on a listener until a shutdown future completes.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

use crate::listener::{Admitting, client_of};
use crate::proxy::{IpCidr, client_address};
use crate::tls_stream;
use crate::{Tracker, router};

/// Why [`serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The client's IP address: the connection's, or, from a trusted proxy,
/// the one it forwarded ([`crate::proxy`]). Unspecified when the router runs
/// without [`serve`] (e.g. under `tower::ServiceExt::oneshot`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl FromRequestParts<Tracker> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        tracker: &Tracker,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        let proxies = &tracker.inner.config.trusted_proxies;
        Ok(Self(client_address(proxies, peer, &parts.headers)))
    }
}

/// Serves `tracker` on `listener` (with TLS if the tracker has it) until
/// `shutdown` completes or [`Tracker::shutdown`] is called, then closes WebSocket connections (code 1001),
/// lets open HTTP answers finish for up to
/// [`Limits::shutdown_grace`](crate::Limits::shutdown_grace), and returns.
///
/// Also runs [`Tracker::maintain`] and, if the configuration has no public
/// URL, takes it from the listener's address.
pub async fn serve<F>(
    listener: TcpListener,
    tracker: Tracker,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = router(tracker.clone());
    serve_app(listener, tracker, app, shutdown).await
}

/// Like [`serve`], but serves `app`: an application built around
/// [`router`]`(tracker)`, e.g. with more routes beside the tracker's or
/// layers over them. Everything else (TLS, client addresses for the limits,
/// maintenance, the public URL from the listener, the shutdown sequence) is
/// as [`serve`] does it.
///
/// ```no_run
/// use axum::routing::get;
/// use chunkswarm_tracker::{Config, Tracker, router, serve_app};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = Tracker::new(Config::default())?;
/// let app = router(tracker.clone()).route("/hello", get(|| async { "hello" }));
/// let listener = chunkswarm_tracker::bind("127.0.0.1:8000").await?;
/// serve_app(listener, tracker, app, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn serve_app<F>(
    listener: TcpListener,
    tracker: Tracker,
    app: axum::Router,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let inner = &tracker.inner;
    let local = listener.local_addr()?;
    inner.urls.default_to(local, tracker.is_tls());
    tracing::info!(addr = %local, tls = tracker.is_tls(), public_url = tracker.public_url(), "tracker listening");
    let maintenance = tokio::spawn(tracker.clone().maintain());
    let app = app.into_make_service_with_connect_info::<SocketAddr>();

    // Stop on the caller's future, or on `Tracker::shutdown` called elsewhere.
    let signal = {
        let tracker = tracker.clone();
        let mut watch = inner.shutdown.subscribe();
        async move {
            tokio::select! {
                () = shutdown => {}
                _ = watch.wait_for(|&down| down) => {}
            }
            tracing::info!("shutting down");
            tracker.shutdown();
        }
    };
    // A second watcher: once shutdown starts, the grace period runs.
    let grace = {
        let mut watch = inner.shutdown.subscribe();
        let limit = inner.config.limits.shutdown_grace;
        async move {
            let _ = watch.wait_for(|&down| down).await;
            tokio::time::sleep(limit).await;
        }
    };
    let timeout = inner.config.limits.tls_handshake_timeout;
    let proxies: Arc<[IpCidr]> = inner.config.trusted_proxies.clone().into();
    let proxy_protocol = inner.config.proxy_protocol;
    // The no-op taps give axum's `ConnectInfo<SocketAddr>` for these listeners.
    let served = match &inner.tls {
        Some(config) => {
            let config = Arc::clone(config);
            let tls = Admitting::new(listener, timeout, move |mut tcp, peer| {
                let (config, proxies) = (Arc::clone(&config), Arc::clone(&proxies));
                async move {
                    let client = client_of(&mut tcp, peer, &proxies, proxy_protocol).await?;
                    match tls_stream::accept(tcp, config)
                        .await
                        .and_then(|s| s.detach())
                    {
                        Ok(stream) => Some((stream, client)),
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            None
                        }
                    }
                }
            })?
            .tap_io(|_| {});
            let server = axum::serve(tls, app).with_graceful_shutdown(signal);
            tokio::select! {
                r = server.into_future() => r,
                () = grace => Ok(()),
            }
        }
        None if proxy_protocol => {
            let plain = Admitting::new(listener, timeout, move |mut tcp, peer| {
                let proxies = Arc::clone(&proxies);
                async move {
                    let client = client_of(&mut tcp, peer, &proxies, proxy_protocol).await?;
                    match tcp.into_std() {
                        Ok(tcp) => Some((tcp, client)),
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "cannot hand the connection over");
                            None
                        }
                    }
                }
            })?
            .tap_io(|_| {});
            let server = axum::serve(plain, app).with_graceful_shutdown(signal);
            tokio::select! {
                r = server.into_future() => r,
                () = grace => Ok(()),
            }
        }
        None => {
            let plain = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let server = axum::serve(plain, app).with_graceful_shutdown(signal);
            tokio::select! {
                r = server.into_future() => r,
                () = grace => Ok(()),
            }
        }
    };
    tracker.shutdown();
    inner.drained(inner.config.limits.shutdown_grace).await;
    maintenance.abort();
    tracing::info!("stopped");
    served.map_err(ServeError::from)
}
