//! A tracker serving in the background of a program: [`Tracker::start`].

use std::net::SocketAddr;

use tokio::net::ToSocketAddrs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{ServeError, Tracker, serve};

/// A tracker serving on its own tokio task, from [`Tracker::start`]. It
/// stops on [`stop`](Self::stop), or when dropped.
#[derive(Debug)]
pub struct RunningTracker {
    tracker: Tracker,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Tracker {
    /// Binds `addr` (`"127.0.0.1:0"` picks a free port) and serves the
    /// tracker there on a tokio task, as [`serve`] does. Its URLs
    /// ([`announce_url`](Self::announce_url), [`media_url`](Self::media_url))
    /// are right as soon as this returns.
    pub async fn start(self, addr: impl ToSocketAddrs) -> Result<RunningTracker, ServeError> {
        let listener = crate::bind(addr).await?;
        let addr = listener.local_addr()?;
        self.inner.urls.default_to(addr, self.is_tls());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, self.clone(), async move {
            let _ = stopped.await;
        }));
        Ok(RunningTracker {
            tracker: self,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

impl RunningTracker {
    /// The tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The WebSocket URL peers announce to, e.g. `ws://127.0.0.1:8000/announce`.
    pub fn announce_url(&self) -> String {
        self.tracker.announce_url()
    }

    /// The origin URL of a file of the media library, by its path there.
    pub fn media_url(&self, path: &str) -> String {
        self.tracker.media_url(path)
    }

    /// The URL of the `.torrent` of a file of the media library.
    pub fn torrent_url(&self, path: &str) -> String {
        self.tracker.torrent_url(path)
    }

    /// Shuts it down (WebSocket connections closed with 1001) and waits
    /// for serving to end.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for RunningTracker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
