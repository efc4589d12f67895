//! The JavaScript API as a page sees it: a `Client` object driven through
//! its JS method names, downloading a torrent from a web seed (a Blob URL,
//! which answers `Range` requests inside the page) with events, reads,
//! stats, the piece map and the Blob; and bad input rejected with errors.
//!
//! Run by `tests/run-browser-tests.sh` (a network namespace, Chromium flags).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use chunkswarm_core::metainfo::TorrentBuilder;
use chunkswarm_wasm::Client;
use common::{blob_url, call, get, of_type, options, recorder, wait};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_client_downloads_from_its_web_seed_and_reports_it() {
    let content: Vec<u8> = (0..1_100_000u32).map(|i| (i % 253) as u8 ^ 0x33).collect();
    let meta = TorrentBuilder::new()
        .piece_length(128 << 10)
        .web_seed("https://unused.invalid/film.webm")
        .build_from_reader("film.webm", content.as_slice())
        .unwrap();
    let client: JsValue = Client::new(JsValue::UNDEFINED).unwrap().into();
    let peer_id = get(&client, "peerId").as_string().unwrap();
    assert!(
        peer_id.starts_with("-CS0001-") && peer_id.len() == 20,
        "{peer_id}"
    );
    let (listener, client_events) = recorder();
    call(&client, "onEvent", &[listener.into()]).unwrap();

    let torrent_bytes = Uint8Array::from(meta.to_bytes().as_slice());
    let web_seed = options(&[("webSeed", blob_url(&content).into())]);
    let torrent = wait(call(&client, "addTorrent", &[torrent_bytes.into(), web_seed]).unwrap())
        .await
        .unwrap();
    let (listener, torrent_events) = recorder();
    call(&torrent, "onEvent", &[listener.into()]).unwrap();
    assert_eq!(
        get(&torrent, "infoHash").as_string().unwrap(),
        meta.info_hash().to_hex()
    );
    assert_eq!(get(&torrent, "name").as_string().unwrap(), "film.webm");
    assert_eq!(
        get(&torrent, "length").as_f64().unwrap(),
        content.len() as f64
    );
    assert_eq!(get(&torrent, "pieceLength").as_f64().unwrap(), 131072.0);
    assert_eq!(get(&torrent, "pieceCount").as_f64().unwrap(), 9.0);

    call(&torrent, "setPlayback", &[500_000.into(), 100_000.into()]).unwrap();
    // A read across two pieces resolves once both are verified; `end` is clamped.
    let middle = wait(call(&torrent, "read", &[200_000.into(), 300_000.into()]).unwrap())
        .await
        .unwrap();
    assert_eq!(
        Uint8Array::from(middle).to_vec(),
        &content[200_000..300_000]
    );
    let tail = wait(call(&torrent, "read", &[1_099_000.into(), 5e9.into()]).unwrap())
        .await
        .unwrap();
    assert_eq!(Uint8Array::from(tail).to_vec(), &content[1_099_000..]);

    let blob = wait(call(&torrent, "blob", &["video/webm".into()]).unwrap())
        .await
        .unwrap();
    let blob: web_sys::Blob = blob.dyn_into().unwrap();
    assert_eq!(blob.type_(), "video/webm");
    let buffer = JsFuture::from(blob.array_buffer()).await.unwrap();
    assert!(
        Uint8Array::new(&buffer).to_vec() == content,
        "the Blob is byte-exact"
    );
    assert!(
        get(&torrent, "done").as_bool().unwrap() || {
            // `done` follows the event, which may still be on its way.
            wait(call(&torrent, "read", &[0.into(), 1.into()]).unwrap())
                .await
                .unwrap();
            get(&torrent, "done").as_bool().unwrap()
        }
    );

    let states = Uint8Array::from(call(&torrent, "pieceStates", &[]).unwrap()).to_vec();
    assert_eq!(states, vec![4; 9], "every piece verified from HTTP");
    let stats = wait(call(&torrent, "stats", &[]).unwrap()).await.unwrap();
    assert_eq!(
        get(&stats, "verifiedBytes").as_f64().unwrap(),
        content.len() as f64
    );
    assert_eq!(
        get(&stats, "httpBytes").as_f64().unwrap(),
        content.len() as f64
    );
    assert_eq!(get(&stats, "p2pBytes").as_f64().unwrap(), 0.0);
    assert_eq!(get(&stats, "piecesTotal").as_f64().unwrap(), 9.0);
    let peers = wait(call(&torrent, "peers", &[]).unwrap()).await.unwrap();
    assert_eq!(Array::from(&peers).length(), 0);

    let events = client_events.borrow().clone();
    let pieces = of_type(&events, "piece");
    let verified: Vec<_> = pieces
        .iter()
        .filter(|e| get(e, "state").as_string().as_deref() == Some("verified"))
        .collect();
    assert_eq!(verified.len(), 9, "one verified event per piece");
    for event in &verified {
        assert_eq!(get(event, "source").as_string().as_deref(), Some("http"));
        assert!(get(event, "peer").is_null());
        assert_eq!(
            get(event, "infoHash").as_string().unwrap(),
            meta.info_hash().to_hex()
        );
    }
    assert!(!of_type(&events, "done").is_empty(), "a done event");
    assert!(
        !of_type(&events, "log").is_empty(),
        "log lines (torrent added)"
    );
    let own = torrent_events.borrow().len();
    assert!(own > 0 && own <= events.len());

    wait(call(&client, "destroy", &[]).unwrap()).await.unwrap();
    // After destroy, reads of verified bytes still work; control calls fail.
    assert!(call(&torrent, "pause", &[]).is_err());
}

#[wasm_bindgen_test]
async fn a_magnet_link_with_the_torrents_url_downloads() {
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let meta = TorrentBuilder::new()
        .piece_length(64 << 10)
        .build_from_reader("linked.bin", content.as_slice())
        .unwrap();
    let xs = blob_url(&meta.to_bytes());
    let encoded = |url: &str| url.replace(':', "%3A").replace('/', "%2F");
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=linked.bin&xs={}",
        meta.info_hash().to_hex(),
        encoded(&xs)
    );
    let client: JsValue = Client::new(JsValue::UNDEFINED).unwrap().into();
    let web_seed = options(&[("webSeed", blob_url(&content).into())]);
    let torrent = wait(call(&client, "addTorrent", &[link.into(), web_seed]).unwrap())
        .await
        .unwrap();
    assert_eq!(
        get(&torrent, "infoHash").as_string().unwrap(),
        meta.info_hash().to_hex()
    );
    let all = wait(call(&torrent, "read", &[0.into(), 300_000.into()]).unwrap())
        .await
        .unwrap();
    assert_eq!(all.dyn_into::<Uint8Array>().unwrap().to_vec(), content);

    // A link whose `xs` serves another torrent; one with no `xs` and no
    // trackerUrl to meet peers that could give its metadata; no topic.
    let other = format!(
        "magnet:?xt=urn:btih:{}&xs={}",
        "ab".repeat(20),
        encoded(&xs)
    );
    let bare = format!("magnet:?xt=urn:btih:{}", meta.info_hash().to_hex());
    for (link, expected) in [
        (other, "not the link's"),
        (bare, "no `xs`"),
        ("magnet:?dn=x".to_owned(), "bad magnet link"),
    ] {
        let rejected = wait(call(&client, "addTorrent", &[link.clone().into()]).unwrap()).await;
        let message = get(&rejected.unwrap_err(), "message").as_string().unwrap();
        assert!(message.contains(expected), "{link}: {message}");
    }
}

#[wasm_bindgen_test]
async fn bad_input_is_an_error_not_a_panic() {
    // (Relative URLs are fine: WebSocket resolves them against the page.)
    assert!(Client::new(options(&[("trackerUrl", "ftp://127.0.0.1/".into())])).is_err());
    assert!(Client::new(options(&[("maxConnections", (-1).into())])).is_err());
    assert!(Client::new(options(&[("iceServers", "stun:x".into())])).is_err());
    let bad_server = Array::of1(&options(&[("urls", "http://not-ice.invalid".into())]));
    assert!(Client::new(options(&[("iceServers", bad_server.into())])).is_err());
    let stun = Array::of1(&options(&[("urls", "stun:127.0.0.1:3478".into())]));
    assert!(Client::new(options(&[("iceServers", stun.into())])).is_ok());
    assert!(Client::new(options(&[("iceTransportPolicy", "relay".into())])).is_ok());
    assert!(Client::new(options(&[("iceTransportPolicy", "turn-only".into())])).is_err());
    assert!(Client::new(options(&[("iceTransportPolicy", 1.into())])).is_err());
    assert!(Client::new("nonsense".into()).is_err());

    // An unreachable tracker is not fatal: the client logs and keeps trying.
    let client: JsValue = Client::new(options(&[("trackerUrl", "ws://127.0.0.1:9/".into())]))
        .unwrap()
        .into();
    let garbage = Uint8Array::from(&b"d4:infod6:lengthi-5eee"[..]);
    let rejected = wait(call(&client, "addTorrent", &[garbage.into()]).unwrap()).await;
    let message = get(&rejected.unwrap_err(), "message").as_string().unwrap();
    assert!(message.contains("bad torrent"), "{message}");
    let not_a_source = wait(call(&client, "addTorrent", &[42.into()]).unwrap()).await;
    assert!(not_a_source.is_err());
    let bad_url = wait(
        call(
            &client,
            "addTorrent",
            &["http://127.0.0.1:9/x.torrent".into()],
        )
        .unwrap(),
    )
    .await;
    assert!(bad_url.is_err());

    let content = vec![1u8; 40_000];
    let meta = TorrentBuilder::new()
        .piece_length(16 << 10)
        .build_from_reader("x.bin", content.as_slice())
        .unwrap();
    let bytes = Uint8Array::from(meta.to_bytes().as_slice());
    let torrent = wait(call(&client, "addTorrent", &[bytes.clone().into()]).unwrap())
        .await
        .unwrap();
    let again = wait(call(&client, "addTorrent", &[bytes.clone().into()]).unwrap()).await;
    assert!(again.is_err(), "the same torrent twice");

    // A removed torrent rejects its pending reads and may be added again.
    let orphan = call(&torrent, "read", &[0.into(), 10.into()]).unwrap();
    let removed = wait(call(&torrent, "remove", &[]).unwrap()).await.unwrap();
    assert_eq!(removed.as_bool(), Some(true));
    assert!(
        wait(orphan).await.is_err(),
        "a pending read rejects on remove"
    );
    let removed_twice = wait(call(&torrent, "remove", &[]).unwrap()).await.unwrap();
    assert_eq!(removed_twice.as_bool(), Some(false));
    let torrent = wait(call(&client, "addTorrent", &[bytes.into()]).unwrap())
        .await
        .expect("added again after remove");
    assert!(call(&torrent, "setPlayback", &[f64::NAN.into(), 1.into()]).is_err());
    assert!(call(&torrent, "setPlayback", &[(-5).into(), 1.into()]).is_err());
    assert!(
        wait(call(&torrent, "read", &[10.into(), 5.into()]).unwrap())
            .await
            .is_err()
    );
    assert!(
        wait(call(&torrent, "read", &[50_000.into(), 60_000.into()]).unwrap())
            .await
            .is_err()
    );
    assert!(
        wait(call(&torrent, "read", &[0.5.into(), 6.into()]).unwrap())
            .await
            .is_err()
    );

    // No web seed and no peer: the read waits, and destroy makes it reject.
    let pending = call(&torrent, "read", &[0.into(), 10.into()]).unwrap();
    wait(call(&client, "destroy", &[]).unwrap()).await.unwrap();
    assert!(
        wait(pending).await.is_err(),
        "a pending read rejects on destroy"
    );
}
