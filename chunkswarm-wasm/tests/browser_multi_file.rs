//! A multi-file torrent downloaded in Chromium from a real HTTP web seed:
//! the files of `album/` as `chunkswarm-tracker`'s origin serves them on
//! loopback, each at `url/name/path/of/file` (BEP 19), with pieces that
//! span file boundaries, a name that needs percent-encoding and an empty
//! file. Byte-exact, every byte over HTTP, every piece verified.
//!
//! `tests/run-browser-tests.sh` writes the files and starts the tracker
//! with them as its media library at [`ORIGIN`], inside the network
//! namespace it makes for the browser; without it this fails.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::Duration;

use chunkswarm_core::driver::Sleeper as _;
use chunkswarm_core::metainfo::TorrentBuilder;
use chunkswarm_wasm::Client;
use chunkswarm_wasm::web::sleep::TimeoutSleeper;
use common::{call, get, wait};
use futures::future::{self, Either};
use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The media library's URL, as the runner script starts the tracker.
const ORIGIN: &str = "http://127.0.0.1:8000/media/";

/// The files of `album/` the runner writes (path, length), in torrent
/// order. The origin serves audio and video files, and no empty ones: the
/// web seed must not ask for `empty.webm`.
const FILES: [(&[&str], usize); 4] = [
    (&["intro.webm"], 300_001),
    (&["cd 1", "track one.opus"], 700_000),
    (&["cd 1", "empty.webm"], 0),
    (&["z.mp3"], 123_457),
];

/// A file of the library, fetched whole with a plain GET.
async fn fetch_whole(path: &[&str]) -> Vec<u8> {
    let encoded: Vec<String> = path
        .iter()
        .map(|segment| String::from(js_sys::encode_uri_component(segment)))
        .collect();
    let url = format!("{ORIGIN}album/{}", encoded.join("/"));
    let response = wait(call(&js_sys::global(), "fetch", &[url.as_str().into()]).unwrap())
        .await
        .unwrap_or_else(|e| {
            panic!("no origin at {ORIGIN} ({e:?}); run tests/run-browser-tests.sh")
        });
    assert_eq!(get(&response, "status").as_f64(), Some(200.0), "{url}");
    let buffer = wait(call(&response, "arrayBuffer", &[]).unwrap())
        .await
        .unwrap();
    Uint8Array::new(&buffer).to_vec()
}

#[wasm_bindgen_test]
async fn a_multi_file_torrent_downloads_from_its_http_web_seed() {
    let mut files = Vec::new();
    for (path, length) in FILES {
        let bytes = if length == 0 {
            Vec::new()
        } else {
            fetch_whole(path).await
        };
        assert_eq!(bytes.len(), length, "{path:?} as the runner wrote it");
        files.push((
            path.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            bytes,
        ));
    }
    let content: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    let meta = TorrentBuilder::new()
        .piece_length(128 << 10)
        .web_seed(ORIGIN)
        .build_from_files(
            "album",
            files
                .iter()
                .map(|(path, bytes)| (path.clone(), bytes.as_slice())),
        )
        .unwrap();
    assert!(meta.info().is_multi_file());

    // No tracker and no `webSeed` option: the torrent's own `url-list`.
    let client: JsValue = Client::new(JsValue::UNDEFINED).unwrap().into();
    let torrent_bytes = Uint8Array::from(meta.to_bytes().as_slice());
    let torrent = wait(call(&client, "addTorrent", &[torrent_bytes.into()]).unwrap())
        .await
        .unwrap();
    let download = Box::pin(wait(call(&torrent, "blob", &[]).unwrap()));
    let deadline = TimeoutSleeper.sleep(Duration::from_secs(60));
    let blob = match future::select(download, deadline).await {
        Either::Left((blob, _)) => blob.unwrap(),
        Either::Right(_) => {
            let stats = wait(call(&torrent, "stats", &[]).unwrap()).await.unwrap();
            panic!("not complete within 60 s: {stats:?}");
        }
    };
    let buffer = JsFuture::from(blob.unchecked_into::<web_sys::Blob>().array_buffer())
        .await
        .unwrap();
    assert!(
        Uint8Array::new(&buffer).to_vec() == content,
        "the files, joined, byte-exact"
    );

    let pieces = meta.info().piece_hashes().len();
    let states = Uint8Array::from(call(&torrent, "pieceStates", &[]).unwrap()).to_vec();
    assert_eq!(states, vec![4; pieces], "every piece verified");
    let stats = wait(call(&torrent, "stats", &[]).unwrap()).await.unwrap();
    assert_eq!(
        get(&stats, "httpBytes").as_f64().unwrap(),
        content.len() as f64
    );
    assert_eq!(get(&stats, "p2pBytes").as_f64().unwrap(), 0.0);
    wait(call(&client, "destroy", &[]).unwrap()).await.unwrap();
}
