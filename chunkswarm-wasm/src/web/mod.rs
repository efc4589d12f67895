//! The browser's I/O for the [driver](chunkswarm_core::driver): each module
//! implements one of its traits with `web-sys`.
//!
//! - [`rtc`] — [`PeerConnector`](chunkswarm_core::driver::PeerConnector) on
//!   `RTCPeerConnection`, non-trickle (the SDP waits for ICE gathering);
//! - [`channel`] — the open `RTCDataChannel` as a byte stream with
//!   buffered-amount backpressure;
//! - [`tracker`] — the WebTorrent tracker over a `WebSocket`, reconnecting;
//! - [`http`] — the web seed with `fetch` and `Range`, its bodies read into
//!   reused buffers (`body`);
//! - [`sleep`] — `setTimeout`;
//! - [`log`] — `tracing` records of the driver routed to each client's listeners.
//!
//! Every JS failure becomes the trait's error type; nothing here panics.

mod body;
pub mod channel;
pub mod http;
pub mod log;
pub mod opfs;
pub mod rtc;
pub mod sleep;
pub mod tracker;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `setTimeout` of the global scope (window or worker).
    #[wasm_bindgen(js_name = setTimeout, catch)]
    pub(crate) fn set_timeout(handler: &js_sys::Function, ms: i32) -> Result<JsValue, JsValue>;
    /// `clearTimeout` of the global scope.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
    /// `fetch` of the global scope.
    #[wasm_bindgen(js_name = fetch)]
    pub(crate) fn fetch_request(request: &web_sys::Request) -> js_sys::Promise;
    /// `crypto.getRandomValues` of the global scope.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(array: &js_sys::Uint8Array) -> Result<JsValue, JsValue>;
}

/// Random bytes from `crypto.getRandomValues`.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], JsValue> {
    let array = js_sys::Uint8Array::new_with_length(N as u32);
    get_random_values(&array)?;
    let mut out = [0u8; N];
    array.copy_to(&mut out);
    Ok(out)
}

/// The text of a JS exception or rejection: an `Error`'s message, a string
/// as is, anything else in its debug form.
pub(crate) fn js_error(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        let name = String::from(error.name());
        let message = String::from(error.message());
        return if name.is_empty() {
            message
        } else {
            format!("{name}: {message}")
        };
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}
