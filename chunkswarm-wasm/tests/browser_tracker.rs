//! Two `Client`s in one page meet through a real `chunkswarm-tracker` over
//! its WebSocket: the first downloads from a web seed (a Blob URL), the
//! second has no usable web seed and must get every byte from the first
//! over a data channel. Byte-exact, with peer and log events.
//!
//! `tests/run-browser-tests.sh` starts the tracker at [`TRACKER`] inside
//! the network namespace it makes for the browser; without it this fails.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chunkswarm_core::driver::Sleeper as _;

use chunkswarm_core::metainfo::TorrentBuilder;
use chunkswarm_wasm::Client;
use chunkswarm_wasm::web::sleep::TimeoutSleeper;
use futures::future::{self, Either};
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Where the runner script starts `chunkswarm-tracker`.
const TRACKER: &str = "ws://127.0.0.1:8000/announce";

fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap()
}

fn call(target: &JsValue, name: &str, args: &[JsValue]) -> JsValue {
    let method: Function = get(target, name).dyn_into().unwrap();
    method
        .apply(target, &args.iter().collect::<Array>())
        .unwrap()
}

async fn wait(promise: JsValue) -> JsValue {
    JsFuture::from(js_sys::Promise::from(promise))
        .await
        .unwrap()
}

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in pairs {
        Reflect::set(&object, &JsValue::from_str(key), value).unwrap();
    }
    object.into()
}

/// A client on the tracker, recording its events as "type/state" strings.
fn client(events: &Rc<RefCell<Vec<String>>>) -> JsValue {
    let client: JsValue = Client::new(object(&[("trackerUrl", TRACKER.into())]))
        .unwrap()
        .into();
    let sink = events.clone();
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let kind = get(&event, "type").as_string().unwrap_or_default();
        let detail = match kind.as_str() {
            "peer" => get(&event, "state").as_string().unwrap_or_default(),
            "log" => get(&event, "message").as_string().unwrap_or_default(),
            _ => String::new(),
        };
        sink.borrow_mut().push(format!("{kind}/{detail}"));
    });
    let listener: Function = listener.into_js_value().unchecked_into();
    call(&client, "onEvent", &[listener.into()]);
    client
}

#[wasm_bindgen_test]
async fn a_second_page_client_downloads_from_the_first_through_the_tracker() {
    let content: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let meta = TorrentBuilder::new()
        .piece_length(256 << 10)
        .announce(TRACKER)
        .build_from_reader("film.webm", content.as_slice())
        .unwrap();
    let torrent_bytes = || Uint8Array::from(meta.to_bytes().as_slice());
    let parts = Array::of1(&Uint8Array::from(content.as_slice()));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    let web_seed = web_sys::Url::create_object_url_with_blob(&blob).unwrap();

    let first_events = Rc::new(RefCell::new(Vec::new()));
    let first = client(&first_events);
    let options = object(&[("webSeed", web_seed.into())]);
    let seeded = wait(call(
        &first,
        "addTorrent",
        &[torrent_bytes().into(), options],
    ))
    .await;
    wait(call(
        &seeded,
        "read",
        &[0.into(), (content.len() as f64).into()],
    ))
    .await;

    let second_events = Rc::new(RefCell::new(Vec::new()));
    let second = client(&second_events);
    // A web seed nothing listens on: every byte must come over WebRTC.
    let options = object(&[("webSeed", "http://127.0.0.1:9/none".into())]);
    let leeching = wait(call(
        &second,
        "addTorrent",
        &[torrent_bytes().into(), options],
    ))
    .await;
    let download = Box::pin(wait(call(&leeching, "blob", &[])));
    let deadline = TimeoutSleeper.sleep(Duration::from_secs(60));
    let blob = match future::select(download, deadline).await {
        Either::Left((blob, _)) => blob,
        Either::Right(_) => panic!(
            "no download from the other client within 60 s; is the tracker at {TRACKER}? {:?}",
            second_events.borrow()
        ),
    };
    let buffer = JsFuture::from(blob.unchecked_into::<web_sys::Blob>().array_buffer())
        .await
        .unwrap();
    assert!(Uint8Array::new(&buffer).to_vec() == content, "byte-exact");

    let stats = wait(call(&leeching, "stats", &[])).await;
    assert_eq!(
        get(&stats, "p2pBytes").as_f64().unwrap(),
        content.len() as f64
    );
    assert_eq!(get(&stats, "httpBytes").as_f64().unwrap(), 0.0);
    let uploaded = wait(call(&seeded, "stats", &[])).await;
    assert!(get(&uploaded, "uploadedBytes").as_f64().unwrap() >= content.len() as f64);

    for events in [&first_events, &second_events] {
        let events = events.borrow();
        assert!(
            events
                .iter()
                .any(|e| e.starts_with("log/tracker connected")),
            "{events:?}"
        );
        assert!(events.iter().any(|e| e == "peer/connected"), "{events:?}");
    }
    wait(call(&second, "destroy", &[])).await;
    wait(call(&first, "destroy", &[])).await;
}
