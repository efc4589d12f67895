//! [`Sleeper`] on `setTimeout`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chunkswarm_core::driver::{BoxFuture, Sleeper};
use futures::channel::oneshot;
use wasm_bindgen::prelude::*;

use super::{clear_timeout, set_timeout};

/// Sleeps with `setTimeout` (clamped to its limit of 2³¹−1 ms, after which
/// the driver simply sleeps again). Dropping a sleep clears its timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeoutSleeper;

impl Sleeper for TimeoutSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(Timeout::new(duration))
    }
}

/// One `setTimeout`, as a future.
#[derive(Debug)]
pub struct Timeout {
    fired: Option<oneshot::Receiver<()>>,
    id: Option<JsValue>,
    _callback: Option<Closure<dyn FnMut()>>,
}

impl Timeout {
    /// Completes after `duration`.
    pub fn new(duration: Duration) -> Self {
        let ms = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
        let (fire, fired) = oneshot::channel();
        let mut fire = Some(fire);
        let callback = Closure::<dyn FnMut()>::new(move || {
            if let Some(fire) = fire.take() {
                let _ = fire.send(());
            }
        });
        match set_timeout(callback.as_ref().unchecked_ref(), ms) {
            Ok(id) => Self {
                fired: Some(fired),
                id: Some(id),
                _callback: Some(callback),
            },
            // No timers (a torn-down scope): complete at once rather than never.
            Err(_) => Self {
                fired: None,
                id: None,
                _callback: None,
            },
        }
    }
}

impl Future for Timeout {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(fired) = self.fired.as_mut() else {
            return Poll::Ready(());
        };
        match Pin::new(fired).poll(cx) {
            Poll::Ready(_) => {
                self.fired = None;
                self.id = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            clear_timeout(&id);
        }
    }
}
