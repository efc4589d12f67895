//! The OPFS store through the JS API: pieces stay stored after the client
//! is gone and are proven again (re-hashed) when the torrent is added once
//! more, a corrupted piece among them is fetched again, the storage listing
//! and `removeStored` work, and a second client opening the same torrent
//! (as a second tab would) falls back to memory instead of sharing the file.
//!
//! Run by `tests/run-browser-tests.sh` (a network namespace, Chromium flags).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use chunkswarm_core::metainfo::{Metainfo, TorrentBuilder};
use chunkswarm_wasm::Client;
use common::{blob_url, call, get, of_type, options, recorder, wait};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = "
export async function overwrite(dir, at, length) {
  const root = await navigator.storage.getDirectory();
  const folder = await (await root.getDirectoryHandle('chunkswarm')).getDirectoryHandle(dir);
  const file = await folder.getFileHandle('data');
  const writable = await file.createWritable({ keepExistingData: true });
  await writable.write({ type: 'write', position: at, data: new Uint8Array(length).fill(0xee) });
  await writable.close();
}")]
extern "C" {
    /// Overwrites `length` bytes at `at` of a stored torrent's data file.
    fn overwrite(dir: &str, at: f64, length: u32) -> js_sys::Promise;
}

const PIECE: u32 = 64 << 10;

/// Content of 9 pieces, different for each `seed`, and its torrent.
fn film(seed: u8) -> (Metainfo, Vec<u8>) {
    let content: Vec<u8> = (0..(8 * PIECE + 5000))
        .map(|i| (i % 251) as u8 ^ seed)
        .collect();
    let meta = TorrentBuilder::new()
        .piece_length(PIECE)
        .build_from_reader("film.webm", content.as_slice())
        .unwrap();
    (meta, content)
}

fn client() -> JsValue {
    Client::new(JsValue::UNDEFINED).unwrap().into()
}

/// Adds `meta` to `client` with `content` as its web seed; returns the
/// torrent and the client's events so far.
async fn add(client: &JsValue, meta: &Metainfo, content: &[u8]) -> (JsValue, Vec<JsValue>) {
    let (listener, events) = recorder();
    call(client, "onEvent", &[listener.into()]).unwrap();
    let bytes = Uint8Array::from(meta.to_bytes().as_slice());
    let web_seed = options(&[("webSeed", blob_url(content).into())]);
    let torrent = wait(call(client, "addTorrent", &[bytes.into(), web_seed]).unwrap())
        .await
        .unwrap();
    let seen = events.borrow().clone();
    (torrent, seen)
}

/// The file's bytes, once complete.
async fn file_bytes(torrent: &JsValue) -> Vec<u8> {
    let file = wait(call(torrent, "file", &[]).unwrap()).await.unwrap();
    let file: web_sys::File = file.dyn_into().unwrap();
    assert_eq!(file.name(), "film.webm");
    let buffer = JsFuture::from(file.array_buffer()).await.unwrap();
    Uint8Array::new(&buffer).to_vec()
}

fn storage_event(events: &[JsValue]) -> JsValue {
    let storage = of_type(events, "storage");
    assert_eq!(storage.len(), 1, "one storage event when added");
    storage[0].clone()
}

/// The stored torrent of `info_hash` in `client.storage()`, if listed.
async fn stored(client: &JsValue, info_hash: &str) -> Option<JsValue> {
    let info = wait(call(client, "storage", &[]).unwrap()).await.unwrap();
    assert_eq!(get(&info, "available").as_bool(), Some(true));
    assert!(get(&info, "quota").as_f64().unwrap() > 0.0);
    Array::from(&get(&info, "torrents"))
        .iter()
        .find(|t| get(t, "infoHash").as_string().as_deref() == Some(info_hash))
}

#[wasm_bindgen_test]
async fn stored_pieces_are_proven_again_and_only_bad_ones_fetched() {
    let (meta, content) = film(0x5a);
    let info_hash = meta.info_hash().to_hex();

    let first = client();
    let (torrent, events) = add(&first, &meta, &content).await;
    let event = storage_event(&events);
    assert_eq!(get(&event, "store").as_string().unwrap(), "opfs");
    assert_eq!(get(&event, "state").as_string().unwrap(), "ready");
    assert_eq!(get(&event, "resumedPieces").as_f64(), Some(0.0));
    assert_eq!(get(&torrent, "storage").as_string().unwrap(), "opfs");
    assert_eq!(file_bytes(&torrent).await, content);
    let listed = stored(&first, &info_hash).await.expect("listed");
    assert_eq!(get(&listed, "name").as_string().unwrap(), "film.webm");
    assert_eq!(get(&listed, "storedPieces").as_f64(), Some(9.0));
    assert_eq!(
        get(&listed, "storedBytes").as_f64(),
        Some(content.len() as f64)
    );
    assert_eq!(get(&listed, "openHere").as_bool(), Some(true));
    wait(call(&first, "destroy", &[]).unwrap()).await.unwrap();

    // Piece 3 rots on disk while no client runs.
    JsFuture::from(overwrite(&info_hash, f64::from(3 * PIECE + 100), 10))
        .await
        .unwrap();

    let second = client();
    let (torrent, events) = add(&second, &meta, &content).await;
    let event = storage_event(&events);
    assert_eq!(get(&event, "store").as_string().unwrap(), "opfs");
    assert_eq!(get(&event, "resumedPieces").as_f64(), Some(8.0));
    let states = Uint8Array::from(call(&torrent, "pieceStates", &[]).unwrap()).to_vec();
    assert_eq!(states.iter().filter(|s| **s >= 3).count(), 8, "{states:?}");
    assert!(states[3] < 3, "the rotten piece is not held: {states:?}");
    assert_eq!(file_bytes(&torrent).await, content);
    let stats = wait(call(&torrent, "stats", &[]).unwrap()).await.unwrap();
    assert_eq!(
        get(&stats, "httpBytes").as_f64(),
        Some(f64::from(PIECE)),
        "only the rotten piece is fetched again"
    );

    wait(call(&second, "removeStored", &[info_hash.clone().into()]).unwrap())
        .await
        .unwrap();
    assert!(stored(&second, &info_hash).await.is_none());
    let again = wait(call(&second, "removeStored", &[info_hash.into()]).unwrap()).await;
    assert!(again.is_err(), "removing what is not stored is an error");
    wait(call(&second, "destroy", &[]).unwrap()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_second_client_with_the_same_torrent_keeps_it_in_memory() {
    let (meta, content) = film(0xa7);
    let first = client();
    let (_, events) = add(&first, &meta, &content).await;
    assert_eq!(
        get(&storage_event(&events), "store").as_string().unwrap(),
        "opfs"
    );
    let second = client();
    let (torrent, events) = add(&second, &meta, &content).await;
    let event = storage_event(&events);
    assert_eq!(get(&event, "store").as_string().unwrap(), "memory");
    let reason = get(&event, "reason").as_string().unwrap();
    assert!(reason.contains("another tab"), "{reason}");
    assert_eq!(file_bytes(&torrent).await, content);
    // It cannot be removed while the first client has it open.
    let info_hash = meta.info_hash().to_hex();
    let busy = wait(call(&second, "removeStored", &[info_hash.clone().into()]).unwrap()).await;
    assert!(busy.is_err());
    wait(call(&first, "removeStored", &[info_hash.into()]).unwrap())
        .await
        .unwrap();
    for client in [first, second] {
        wait(call(&client, "destroy", &[]).unwrap()).await.unwrap();
    }
}
