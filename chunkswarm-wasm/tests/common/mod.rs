//! Helpers the browser test suites share: calling the JS API by its
//! method names, awaiting promises, option objects, Blob URLs and event
//! recorders.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub(crate) fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap()
}

/// `target[name](...args)`.
pub(crate) fn call(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let method: Function = get(target, name).dyn_into().unwrap();
    method.apply(target, &args.iter().collect::<Array>())
}

pub(crate) async fn wait(promise: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(js_sys::Promise::from(promise)).await
}

pub(crate) fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in pairs {
        Reflect::set(&object, &JsValue::from_str(key), value).unwrap();
    }
    object.into()
}

pub(crate) fn blob_url(content: &[u8]) -> String {
    let parts = Array::of1(&Uint8Array::from(content));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    web_sys::Url::create_object_url_with_blob(&blob).unwrap()
}

/// Collects every event a listener gets, as JS objects.
pub(crate) fn recorder() -> (Function, Rc<RefCell<Vec<JsValue>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        sink.borrow_mut().push(event);
    });
    (listener.into_js_value().unchecked_into(), seen)
}

pub(crate) fn of_type(events: &[JsValue], kind: &str) -> Vec<JsValue> {
    events
        .iter()
        .filter(|e| get(e, "type").as_string().as_deref() == Some(kind))
        .cloned()
        .collect()
}
