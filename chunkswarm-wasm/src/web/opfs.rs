//! The OPFS worker: a dedicated worker (`opfs_worker.js`, started from a
//! Blob URL) that owns the sync access handles of every stored torrent, and
//! the request/reply channel to it.
//!
//! Each request is a plain object `{ id, op, ... }`; the worker answers
//! requests one at a time, in order, and each reply settles the future of
//! its request. Byte buffers cross by transfer, never by copy.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use wasm_bindgen::prelude::*;

use super::js_error;

/// The worker's source, started from a Blob URL so nothing extra is served.
const WORKER_SOURCE: &str = include_str!("opfs_worker.js");

/// A request the worker refused, with the DOMException name it threw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub(crate) struct WorkerError {
    /// `QuotaExceededError`, `NoModificationAllowedError`, `NotFoundError`, ...
    pub(crate) name: String,
    pub(crate) message: String,
}

impl WorkerError {
    fn gone() -> Self {
        Self {
            name: "WorkerGone".into(),
            message: "the storage worker stopped".into(),
        }
    }

    /// The origin's quota (or the disk) is full.
    pub(crate) fn is_quota(&self) -> bool {
        self.name == "QuotaExceededError"
    }

    /// Another tab or worker holds the file.
    pub(crate) fn is_locked(&self) -> bool {
        self.name == "NoModificationAllowedError"
    }
}

/// Requests waiting for their reply; `None` once the worker failed.
type Pending =
    Rc<RefCell<Option<HashMap<u32, oneshot::Sender<Result<js_sys::Object, WorkerError>>>>>>;

/// The running worker.
pub(crate) struct OpfsWorker {
    worker: web_sys::Worker,
    pending: Pending,
    next_id: Cell<u32>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl std::fmt::Debug for OpfsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpfsWorker")
            .field("pending", &self.pending.borrow().as_ref().map(HashMap::len))
            .finish_non_exhaustive()
    }
}

fn get(object: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn text(object: &JsValue, key: &str) -> String {
    get(object, key).as_string().unwrap_or_default()
}

impl OpfsWorker {
    /// Starts the worker, or says why this browser cannot (no OPFS, no
    /// workers). Sync access handles exist only inside workers: a browser
    /// without them fails each `open` with `NotSupportedError`.
    pub(crate) fn start() -> Result<Rc<Self>, String> {
        let global = js_sys::global();
        let has = |path: &[&str]| {
            let mut value: JsValue = global.clone().into();
            for key in path {
                value = get(&value, key);
                if value.is_undefined() || value.is_null() {
                    return false;
                }
            }
            true
        };
        if !has(&["navigator", "storage", "getDirectory"]) {
            return Err("this browser has no Origin Private File System".into());
        }
        if !has(&["Worker"]) {
            return Err("this page cannot start workers".into());
        }
        let parts = js_sys::Array::of1(&JsValue::from_str(WORKER_SOURCE));
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("text/javascript");
        let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
            .map_err(|e| js_error(&e))?;
        let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| js_error(&e))?;
        let worker =
            web_sys::Worker::new(&url).map_err(|e| format!("storage worker: {}", js_error(&e)));
        let _ = web_sys::Url::revoke_object_url(&url);
        let worker = worker?;

        let pending: Pending = Rc::new(RefCell::new(Some(HashMap::new())));
        let replies = pending.clone();
        let on_message = Closure::<dyn FnMut(_)>::new(move |event: web_sys::MessageEvent| {
            let reply = event.data();
            let Some(id) = get(&reply, "id").as_f64() else {
                return;
            };
            let sender = replies
                .borrow_mut()
                .as_mut()
                .and_then(|pending| pending.remove(&(id as u32)));
            let Some(sender) = sender else {
                return;
            };
            let result = if get(&reply, "ok").as_bool() == Some(true) {
                Ok(reply.unchecked_into())
            } else {
                Err(WorkerError {
                    name: text(&reply, "name"),
                    message: text(&reply, "message"),
                })
            };
            let _ = sender.send(result);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // A worker that fails to load (a CSP without `blob:`, say) fails
        // every request, now and later.
        let failed = pending.clone();
        let on_error = Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
            failed.borrow_mut().take();
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Rc::new(Self {
            worker,
            pending,
            next_id: Cell::new(1),
            _on_message: on_message,
            _on_error: on_error,
        }))
    }

    /// Sends `op` with the fields of `request` (buffers in `transfer` move
    /// to the worker) and resolves with its reply.
    pub(crate) async fn call(
        &self,
        op: &str,
        request: &js_sys::Object,
        transfer: &[JsValue],
    ) -> Result<js_sys::Object, WorkerError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let set = |key: &str, value: &JsValue| {
            let _ = js_sys::Reflect::set(request, &JsValue::from_str(key), value);
        };
        set("id", &JsValue::from(id));
        set("op", &JsValue::from_str(op));
        let (tx, rx) = oneshot::channel();
        match self.pending.borrow_mut().as_mut() {
            Some(pending) => pending.insert(id, tx),
            None => return Err(WorkerError::gone()),
        };
        let transfer: js_sys::Array = transfer.iter().collect();
        if let Err(e) = self.worker.post_message_with_transfer(request, &transfer) {
            if let Some(pending) = self.pending.borrow_mut().as_mut() {
                pending.remove(&id);
            }
            return Err(WorkerError {
                name: "DataCloneError".into(),
                message: js_error(&e),
            });
        }
        rx.await.unwrap_or_else(|_| Err(WorkerError::gone()))
    }
}

impl Drop for OpfsWorker {
    fn drop(&mut self) {
        // Ends the worker, which releases its files.
        self.worker.terminate();
    }
}

/// A request object with the given fields.
pub(crate) fn request(fields: &[(&str, JsValue)]) -> js_sys::Object {
    let object = js_sys::Object::new();
    for (key, value) in fields {
        let _ = js_sys::Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}

/// A field of a reply.
pub(crate) fn field(reply: &js_sys::Object, key: &str) -> JsValue {
    get(reply, key)
}
