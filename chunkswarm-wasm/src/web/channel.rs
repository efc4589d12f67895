//! One `RTCPeerConnection` with its `RTCDataChannel`, as the driver's
//! byte stream.
//!
//! A `Conn` owns the JS objects and every callback attached to them.
//! Callbacks hold only a weak reference, so dropping the last owner (the
//! pending connection, or the channel's sender and event stream) detaches
//! them and closes the connection. Incoming messages are queued from the
//! moment the data channel exists, so nothing sent right after opening is
//! lost while the driver is still completing the connection.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use chunkswarm_core::driver::{ChannelClosed, ChannelEvent, ChannelSender};
use futures::Stream;
use futures::channel::mpsc;
use wasm_bindgen::prelude::*;
use web_sys::{
    MessageEvent, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState, RtcDataChannelType,
    RtcIceGatheringState, RtcPeerConnection, RtcPeerConnectionState,
};

/// The largest data-channel message sent: what every stack accepts
/// (webrtc-rs takes 64 KiB, Chromium 256 KiB). The wire is a byte stream,
/// so larger writes are split.
pub const MAX_MESSAGE: usize = 64 << 10;

/// Buffered-amount marks of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Water {
    /// Above this many buffered bytes the channel reports not writable.
    pub high: u32,
    /// At or below this many (`bufferedamountlow`) it reports writable again.
    pub low: u32,
}

type Callback = Closure<dyn FnMut(JsValue)>;

/// A peer connection and (once it exists) its data channel.
pub(crate) struct Conn {
    pub(crate) pc: RtcPeerConnection,
    dc: RefCell<Option<RtcDataChannel>>,
    events: RefCell<Option<mpsc::UnboundedSender<ChannelEvent>>>,
    incoming: RefCell<Option<mpsc::UnboundedReceiver<ChannelEvent>>>,
    writable: Cell<bool>,
    water: Water,
    wakers: RefCell<Vec<Waker>>,
    callbacks: RefCell<Vec<Callback>>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("connection", &self.pc.connection_state())
            .field(
                "channel",
                &self.dc.borrow().as_ref().map(|dc| dc.ready_state()),
            )
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Wraps a new peer connection and watches its state.
    pub(crate) fn new(pc: RtcPeerConnection, water: Water) -> Rc<Self> {
        let (events, incoming) = mpsc::unbounded();
        let conn = Rc::new(Self {
            pc,
            dc: RefCell::new(None),
            events: RefCell::new(Some(events)),
            incoming: RefCell::new(Some(incoming)),
            writable: Cell::new(true),
            water,
            wakers: RefCell::new(Vec::new()),
            callbacks: RefCell::new(Vec::new()),
        });
        let on_state = conn.callback(|conn, _| {
            if conn.is_dead() {
                conn.end();
            }
            conn.wake();
        });
        conn.pc
            .set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        let on_gathering = conn.callback(|conn, _| conn.wake());
        conn.pc
            .set_onicegatheringstatechange(Some(on_gathering.as_ref().unchecked_ref()));
        conn.keep(on_state);
        conn.keep(on_gathering);
        conn
    }

    /// Answerer side: adopts the first data channel the remote opens.
    pub(crate) fn accept_channels(self: &Rc<Self>) {
        let on_channel = self.callback(|conn, event| {
            let Ok(event) = event.dyn_into::<RtcDataChannelEvent>() else {
                return;
            };
            let channel = event.channel();
            if conn.dc.borrow().is_some() {
                channel.close(); // one channel per connection
                return;
            }
            conn.adopt(channel);
        });
        self.pc
            .set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        self.keep(on_channel);
    }

    /// Takes `dc` as the connection's channel and routes its events.
    pub(crate) fn adopt(self: &Rc<Self>, dc: RtcDataChannel) {
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        let on_open = self.callback(|conn, _| conn.wake());
        let on_close = self.callback(|conn, _| {
            conn.end();
            conn.wake();
        });
        let on_message = self.callback(|conn, event| {
            let Ok(event) = event.dyn_into::<MessageEvent>() else {
                return;
            };
            let data = event.data();
            match data.dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buffer) => {
                    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                    conn.push(ChannelEvent::Data(Bytes::from(bytes)));
                }
                // The wire is binary; a text message is a broken peer.
                Err(_) => conn.close(),
            }
        });
        let on_low = self.callback(|conn, _| {
            if !conn.writable.replace(true) {
                conn.push(ChannelEvent::Writable(true));
            }
        });
        dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        dc.set_buffered_amount_low_threshold(self.water.low);
        for callback in [on_open, on_close, on_message, on_low] {
            self.keep(callback);
        }
        *self.dc.borrow_mut() = Some(dc);
        self.wake();
    }

    fn callback(self: &Rc<Self>, f: impl Fn(&Rc<Self>, JsValue) + 'static) -> Callback {
        let weak: Weak<Self> = Rc::downgrade(self);
        Closure::new(move |event: JsValue| {
            if let Some(conn) = weak.upgrade() {
                f(&conn, event);
            }
        })
    }

    fn keep(&self, callback: Callback) {
        self.callbacks.borrow_mut().push(callback);
    }

    fn push(&self, event: ChannelEvent) {
        if let Some(events) = self.events.borrow().as_ref() {
            let _ = events.unbounded_send(event);
        }
    }

    /// Ends the event stream: the channel is closed.
    fn end(&self) {
        self.events.borrow_mut().take();
    }

    fn wake(&self) {
        for waker in self.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Registers `cx` to be woken on the next state change.
    pub(crate) fn wait(&self, cx: &Context<'_>) {
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
    }

    /// ICE gathering is complete: the local SDP holds every candidate.
    pub(crate) fn gathered(&self) -> bool {
        self.pc.ice_gathering_state() == RtcIceGatheringState::Complete
    }

    /// The connection failed or closed, or its channel did.
    pub(crate) fn is_dead(&self) -> bool {
        let pc_dead = matches!(
            self.pc.connection_state(),
            RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
        );
        let dc_dead = self.dc.borrow().as_ref().is_some_and(|dc| {
            matches!(
                dc.ready_state(),
                RtcDataChannelState::Closing | RtcDataChannelState::Closed
            )
        });
        pc_dead || dc_dead || self.events.borrow().is_none()
    }

    /// The data channel is open.
    pub(crate) fn is_open(&self) -> bool {
        self.dc
            .borrow()
            .as_ref()
            .is_some_and(|dc| dc.ready_state() == RtcDataChannelState::Open)
    }

    /// Closes the channel and the connection and ends the event stream.
    pub(crate) fn close(&self) {
        self.end();
        if let Some(dc) = self.dc.borrow().as_ref() {
            dc.close();
        }
        self.pc.close();
        self.wake();
    }

    /// Sends `data` in messages of at most [`MAX_MESSAGE`] bytes.
    fn send(&self, data: &[u8]) -> Result<(), ChannelClosed> {
        if self.events.borrow().is_none() {
            return Err(ChannelClosed);
        }
        let sent = {
            let dc = self.dc.borrow();
            let dc = dc.as_ref().ok_or(ChannelClosed)?;
            if dc.ready_state() != RtcDataChannelState::Open {
                Err(ChannelClosed)
            } else {
                data.chunks(MAX_MESSAGE)
                    .try_for_each(|part| dc.send_with_u8_array(part).map_err(|_| ChannelClosed))
                    .map(|()| dc.buffered_amount())
            }
        };
        match sent {
            Ok(buffered) => {
                if buffered > self.water.high && self.writable.replace(false) {
                    self.push(ChannelEvent::Writable(false));
                }
                Ok(())
            }
            Err(e) => {
                // A full send queue makes Chromium throw: the channel is unusable.
                self.close();
                Err(e)
            }
        }
    }

    /// The channel's two halves for the driver. Call once, when open.
    pub(crate) fn split(self: &Rc<Self>) -> Option<(WebChannelSender, WebChannelEvents)> {
        let incoming = self.incoming.borrow_mut().take()?;
        Some((
            WebChannelSender { conn: self.clone() },
            WebChannelEvents {
                incoming,
                _conn: self.clone(),
            },
        ))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(dc) = self.dc.borrow().as_ref() {
            dc.set_onopen(None);
            dc.set_onclose(None);
            dc.set_onmessage(None);
            dc.set_onbufferedamountlow(None);
            dc.close();
        }
        self.pc.set_onconnectionstatechange(None);
        self.pc.set_onicegatheringstatechange(None);
        self.pc.set_ondatachannel(None);
        self.pc.close();
    }
}

/// The sending half of an open channel.
#[derive(Debug)]
pub struct WebChannelSender {
    conn: Rc<Conn>,
}

impl ChannelSender for WebChannelSender {
    fn send(&self, data: Bytes) -> Result<(), ChannelClosed> {
        self.conn.send(&data)
    }

    fn close(&self) {
        self.conn.close();
    }
}

/// What arrives on an open channel; ends when it closes.
#[derive(Debug)]
pub struct WebChannelEvents {
    incoming: mpsc::UnboundedReceiver<ChannelEvent>,
    _conn: Rc<Conn>,
}

impl Stream for WebChannelEvents {
    type Item = ChannelEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChannelEvent>> {
        Pin::new(&mut self.incoming).poll_next(cx)
    }
}
