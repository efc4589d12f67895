//! The WebTorrent tracker over a browser `WebSocket`.
//!
//! [`connect_tracker`] returns at once: messages sent while the socket is
//! connecting (or reconnecting after a drop, with backoff from 1 s to 30 s)
//! wait in a bounded queue. The link's event stream therefore lasts until
//! [`TrackerControl::close`]; a tracker that goes away for a while costs
//! announces, not the torrent. Frames that do not parse are logged and skipped.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use chunkswarm_core::driver::signal::{SignalIn, SignalOut};
use chunkswarm_core::driver::{Signaling, SignalingError, SignalingLink, TrackerError};
use futures::channel::mpsc;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::log::LogSink;
use super::{clear_timeout, js_error, set_timeout};
use crate::model::LogLevel;

/// Messages kept while the tracker is unreachable; older ones are dropped.
const MAX_QUEUED: usize = 256;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

type Callback = Closure<dyn FnMut(JsValue)>;
/// A pending `setTimeout`: its id and callback.
type Timer = (JsValue, Closure<dyn FnMut()>);

struct Shared {
    url: String,
    socket: RefCell<Option<WebSocket>>,
    queue: RefCell<VecDeque<String>>,
    incoming: RefCell<Option<mpsc::UnboundedSender<SignalIn>>>,
    callbacks: RefCell<Vec<Callback>>,
    /// The pending reconnection: its timer id and callback.
    retry: RefCell<Option<Timer>>,
    failures: Cell<u32>,
    /// The driver was told the tracker is down: the next open is reported
    /// as a reconnection, so it announces again.
    down_reported: Cell<bool>,
    log: LogSink,
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.incoming.borrow().is_none()
    }

    /// Opens a new socket and wires its callbacks.
    fn open(self: &Rc<Self>) -> Result<(), JsValue> {
        let socket = WebSocket::new(&self.url)?;
        let weak = Rc::downgrade(self);
        let on_open = callback(&weak, |shared, _| {
            shared.failures.set(0);
            if shared.down_reported.replace(false) {
                // The tracker forgot us with the old socket (or never knew
                // us): the driver re-announces.
                if let Some(incoming) = shared.incoming.borrow().as_ref() {
                    let _ = incoming.unbounded_send(SignalIn::Reconnected);
                }
            }
            shared.log.log(
                LogLevel::Info,
                None,
                format!("tracker connected: {}", shared.url),
            );
            shared.flush();
        });
        let on_message = callback(&weak, |shared, event| {
            let Some(text) = event
                .dyn_ref::<MessageEvent>()
                .and_then(|e| e.data().as_string())
            else {
                return; // binary frames are not part of the protocol
            };
            match SignalIn::parse(&text) {
                Ok(message) => {
                    if let Some(incoming) = shared.incoming.borrow().as_ref() {
                        let _ = incoming.unbounded_send(message);
                    }
                }
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
            if !shared.down_reported.replace(true) {
                // No offers while nobody can receive them.
                if let Some(incoming) = shared.incoming.borrow().as_ref() {
                    let lost = TrackerError::Lost {
                        url: shared.url.clone(),
                    };
                    let _ = incoming.unbounded_send(SignalIn::Disconnected(lost));
                }
            }
            shared.reconnect_later();
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

    fn reconnect_later(self: &Rc<Self>) {
        if self.is_closed() {
            return;
        }
        let failures = self.failures.get().saturating_add(1);
        self.failures.set(failures);
        let delay = Duration::from_secs(1u64 << failures.min(5)).min(MAX_BACKOFF);
        let weak = Rc::downgrade(self);
        let retry = Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                if shared.is_closed() {
                    return;
                }
                if let Err(e) = shared.open() {
                    shared.log.log(LogLevel::Error, None, js_error(&e));
                }
            }
        });
        let ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
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

    /// Sends what waited for the connection.
    fn flush(&self) {
        let socket = self.socket.borrow();
        let Some(socket) = socket
            .as_ref()
            .filter(|s| s.ready_state() == WebSocket::OPEN)
        else {
            return;
        };
        let mut queue = self.queue.borrow_mut();
        while let Some(text) = queue.pop_front() {
            if socket.send_with_str(&text).is_err() {
                queue.push_front(text);
                break;
            }
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
        let mut queue = self.shared.queue.borrow_mut();
        if queue.len() >= MAX_QUEUED {
            queue.pop_front();
        }
        queue.push_back(message.to_json());
        drop(queue);
        self.shared.flush();
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
    /// Sends what is queued if the socket is open, closes it, stops
    /// reconnecting, and ends the link's event stream.
    pub fn close(&self) {
        self.shared.flush();
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
        queue: RefCell::new(VecDeque::new()),
        incoming: RefCell::new(Some(incoming)),
        callbacks: RefCell::new(Vec::new()),
        retry: RefCell::new(None),
        failures: Cell::new(0),
        down_reported: Cell::new(false),
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
