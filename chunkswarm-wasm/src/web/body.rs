//! Reading a `fetch` body into wasm memory chunk by chunk, with reused buffers.
//!
//! A default reader hands out a fresh `Uint8Array` for every network chunk:
//! a mebibyte of short-lived buffers per piece, which the renderer frees only
//! when the garbage collector gets round to it, so under load the page's
//! memory rises with the download rate. A BYOB ("bring your own buffer")
//! reader fills a buffer we give it instead; each read hands it back
//! (transferred, but the same memory), so one scratch buffer serves a whole
//! response and then the next one. Browsers whose fetch bodies are not
//! byte streams get the default reader.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamByobReader, ReadableStreamDefaultReader};

/// Bytes asked of each BYOB read.
const SCRATCH_BYTES: u32 = 256 << 10;
/// Scratch buffers kept for later responses (about one per request in flight).
const SCRATCH_KEPT: usize = 4;

thread_local! {
    /// The page's (or worker's) idle scratch buffers.
    static SCRATCH: RefCell<Vec<js_sys::ArrayBuffer>> = const { RefCell::new(Vec::new()) };
}

fn take_scratch() -> js_sys::ArrayBuffer {
    SCRATCH
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| js_sys::ArrayBuffer::new(SCRATCH_BYTES))
}

fn give_back_scratch(buffer: js_sys::ArrayBuffer) {
    SCRATCH.with_borrow_mut(|kept| {
        // A buffer the stream still holds (an aborted read) comes back detached.
        if buffer.byte_length() == SCRATCH_BYTES && kept.len() < SCRATCH_KEPT {
            kept.push(buffer);
        }
    });
}

/// A response body being read.
pub(crate) enum BodyReader {
    Byob {
        reader: ReadableStreamByobReader,
        /// Ours between reads; `None` while the stream holds it.
        buffer: Option<js_sys::ArrayBuffer>,
    },
    Default(ReadableStreamDefaultReader),
}

impl BodyReader {
    /// A reader of `body`: BYOB where the browser offers it.
    pub(crate) fn new(body: &ReadableStream) -> Self {
        match ReadableStreamByobReader::new(body) {
            Ok(reader) => Self::Byob {
                reader,
                buffer: Some(take_scratch()),
            },
            Err(_) => Self::Default(body.get_reader().unchecked_into()),
        }
    }

    /// Appends the next chunk to `out`; `false` at the end of the body.
    pub(crate) async fn read_into(&mut self, out: &mut Vec<u8>) -> Result<bool, JsValue> {
        let (done, value) = match self {
            Self::Byob { reader, buffer, .. } => {
                let Some(into) = buffer.take() else {
                    return Err(JsValue::from_str("the body's buffer was lost"));
                };
                let view = js_sys::Uint8Array::new(&into);
                read_result(JsFuture::from(reader.read_with_array_buffer_view(&view)).await?)?
            }
            Self::Default(reader) => read_result(JsFuture::from(reader.read()).await?)?,
        };
        // A BYOB read answers with a view on our buffer, even at the end.
        let bytes = value
            .map(|v| v.dyn_into::<js_sys::Uint8Array>())
            .transpose()?;
        if let (Self::Byob { buffer, .. }, Some(bytes)) = (&mut *self, &bytes) {
            *buffer = Some(bytes.buffer());
        }
        if done {
            return Ok(false);
        }
        if let Some(bytes) = bytes {
            let start = out.len();
            out.resize(start + bytes.length() as usize, 0);
            bytes.copy_to(&mut out[start..]);
        }
        Ok(true)
    }

    /// Stops reading: the rest of the body is not wanted.
    pub(crate) fn cancel(&self) {
        let _ = match self {
            Self::Byob { reader, .. } => reader.cancel(),
            Self::Default(reader) => reader.cancel(),
        };
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if let Self::Byob { buffer, .. } = self {
            if let Some(buffer) = buffer.take() {
                give_back_scratch(buffer);
            }
        }
    }
}

fn read_result(result: JsValue) -> Result<(bool, Option<JsValue>), JsValue> {
    let done = js_sys::Reflect::get(&result, &JsValue::from_str("done"))?.is_truthy();
    let value = js_sys::Reflect::get(&result, &JsValue::from_str("value"))?;
    Ok((done, (!value.is_undefined()).then_some(value)))
}
