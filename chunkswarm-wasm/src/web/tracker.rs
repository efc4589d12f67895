//! The WebTorrent tracker over a browser `WebSocket`.
//!
//! [`connect_tracker`] returns at once and keeps the link up as the core's
//! shared policy ([`Reconnect`]) says, as the native link does: each opened
//! connection is reported to the driver (which announces anew), each failed
//! attempt or drop too, with a wait that doubles from 0.5 s to 30 s, with
//! jitter, before the next attempt. Messages sent while the socket is not
//! open are dropped; the driver's re-announce replaces them. The link's
//! event stream therefore lasts until [`TrackerControl::close`]; a tracker
//! that goes away for a while costs announces, not the torrent. Frames that
//! do not parse are logged and skipped.

use std::cell::RefCell;
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use chunkswarm_core::driver::reconnect::Reconnect;
use chunkswarm_core::driver::signal::{SignalIn, SignalOut};
use chunkswarm_core::driver::{Signaling, SignalingError, SignalingLink, TrackerError};
use futures::channel::mpsc;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket};
use web_time::Instant;

use super::log::LogSink;
use super::{clear_timeout, js_error, random_bytes, set_timeout};
use crate::model::LogLevel;

type Callback = Closure<dyn FnMut(JsValue)>;
/// A pending `setTimeout`: its id and callback.
type Timer = (JsValue, Closure<dyn FnMut()>);

struct Shared {
    url: String,
    socket: RefCell<Option<WebSocket>>,
    incoming: RefCell<Option<mpsc::UnboundedSender<SignalIn>>>,
    callbacks: RefCell<Vec<Callback>>,
    /// The pending reconnection: its timer id and callback.
    retry: RefCell<Option<Timer>>,
    policy: RefCell<Reconnect>,
    log: LogSink,
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.incoming.borrow().is_none()
    }

    fn tell_driver(&self, message: SignalIn) {
        if let Some(incoming) = self.incoming.borrow().as_ref() {
            let _ = incoming.unbounded_send(message);
        }
    }

    /// Opens a new socket and wires its callbacks.
    fn open(self: &Rc<Self>) -> Result<(), JsValue> {
        let socket = WebSocket::new(&self.url)?;
        let weak = Rc::downgrade(self);
        let on_open = callback(&weak, |shared, _| {
            // The tracker does not know this socket: the driver announces.
            let told = shared.policy.borrow_mut().opened();
            shared.tell_driver(told);
            shared.log.log(
                LogLevel::Info,
                None,
                format!("tracker connected: {}", shared.url),
            );
        });
        let on_message = callback(&weak, |shared, event| {
            let Some(text) = event
                .dyn_ref::<MessageEvent>()
                .and_then(|e| e.data().as_string())
            else {
                return; // binary frames are not part of the protocol
            };
            match SignalIn::parse(&text) {
                Ok(message) => shared.tell_driver(message),
                Err(e) => {
                    shared.log.log(
                        LogLevel::Debug,
                        None,
                        format!("tracker message skipped: {e}"),
                    );
                }
            }
        });
        let on_close = callback(&weak, |shared, event| {
            let code = event.dyn_ref::<CloseEvent>().map_or(0, CloseEvent::code);
            shared.log.log(
                LogLevel::Warn,
                None,
                format!("tracker connection closed (code {code}): {}", shared.url),
            );
            shared.socket.borrow_mut().take();
            if shared.is_closed() {
                return;
            }
            let url = shared.url.clone();
            let error = if shared.policy.borrow().is_open() {
                TrackerError::Lost { url }
            } else {
                let reason = format!("the WebSocket closed with code {code} before opening");
                TrackerError::Unreachable { url, reason }
            };
            // No offers while nobody can receive them.
            let (told, until) = shared.policy.borrow_mut().failed(Instant::now(), error);
            shared.tell_driver(told);
            shared.retry_at(until);
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut callbacks = self.callbacks.borrow_mut();
        callbacks.clear();
        callbacks.extend([on_open, on_message, on_close]);
        drop(callbacks);
        if let Some(old) = self.socket.borrow_mut().replace(socket) {
            detach(&old);
            let _ = old.close();
        }
        Ok(())
    }

    /// Opens a new socket at `until`, the end of the policy's wait.
    fn retry_at(self: &Rc<Self>, until: Instant) {
        let weak = Rc::downgrade(self);
        let retry = Closure::<dyn FnMut()>::new(move || {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            // The timer set for `until` fired: the wait is over, even if
            // the clock reads a hair earlier.
            let now = Instant::now().max(until);
            if shared.is_closed() || !shared.policy.borrow_mut().retry_due(now) {
                return;
            }
            if let Err(e) = shared.open() {
                shared.log.log(LogLevel::Error, None, js_error(&e));
            }
        });
        let wait = until.saturating_duration_since(Instant::now());
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        if let Ok(id) = set_timeout(retry.as_ref().unchecked_ref(), ms) {
            self.cancel_retry();
            *self.retry.borrow_mut() = Some((id, retry));
        }
    }

    fn cancel_retry(&self) {
        if let Some((id, _)) = self.retry.borrow_mut().take() {
            clear_timeout(&id);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.cancel_retry();
        if let Some(socket) = self.socket.get_mut().take() {
            detach(&socket);
            let _ = socket.close();
        }
    }
}

fn callback(weak: &Weak<Shared>, f: impl Fn(&Rc<Shared>, JsValue) + 'static) -> Callback {
    let weak = weak.clone();
    Closure::new(move |event: JsValue| {
        if let Some(shared) = weak.upgrade() {
            f(&shared, event);
        }
    })
}

fn detach(socket: &WebSocket) {
    socket.set_onopen(None);
    socket.set_onmessage(None);
    socket.set_onclose(None);
}

/// The driver's sending half.
struct Sender {
    shared: Rc<Shared>,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackerSender")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl Signaling for Sender {
    fn send(&self, message: SignalOut) -> Result<(), SignalingError> {
        if self.shared.is_closed() {
            return Err(SignalingError::Closed);
        }
        if !self.shared.policy.borrow().is_open() {
            // The driver announces anew once the connection opens.
            return Ok(());
        }
        let socket = self.shared.socket.borrow();
        if let Some(socket) = socket.as_ref() {
            if let Err(e) = socket.send_with_str(&message.to_json()) {
                self.shared.log.log(
                    LogLevel::Warn,
                    None,
                    format!("tracker send failed: {}", js_error(&e)),
                );
            }
        }
        Ok(())
    }
}

/// Ends the tracker connection.
pub struct TrackerControl {
    shared: Rc<Shared>,
}

impl fmt::Debug for TrackerControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackerControl")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl TrackerControl {
    /// Closes the socket (after what was sent on it), stops reconnecting,
    /// and ends the link's event stream.
    pub fn close(&self) {
        self.shared.incoming.borrow_mut().take();
        self.shared.cancel_retry();
        if let Some(socket) = self.shared.socket.borrow_mut().take() {
            detach(&socket);
            let _ = socket.close_with_code(1000);
        }
        self.shared.callbacks.borrow_mut().clear();
    }
}

/// Starts connecting to the tracker at `url` (`ws://` or `wss://`). Fails
/// only on a URL the browser refuses.
pub fn connect_tracker(
    url: &str,
    log: LogSink,
) -> Result<(SignalingLink, TrackerControl), JsValue> {
    let (incoming, events) = mpsc::unbounded();
    let shared = Rc::new(Shared {
        url: url.to_owned(),
        socket: RefCell::new(None),
        incoming: RefCell::new(Some(incoming)),
        callbacks: RefCell::new(Vec::new()),
        retry: RefCell::new(None),
        // Jitter differs from page to page.
        policy: RefCell::new(Reconnect::new(u64::from_le_bytes(random_bytes()?))),
        log,
    });
    shared.open()?;
    // The driver's traits take `Arc`; wasm32 is single-threaded, so the
    // non-`Send` insides are never shared across threads.
    #[allow(clippy::arc_with_non_send_sync)]
    let sender: Arc<dyn Signaling> = Arc::new(Sender {
        shared: shared.clone(),
    });
    Ok((
        SignalingLink {
            sender,
            events: Box::pin(events),
        },
        TrackerControl { shared },
    ))
}
