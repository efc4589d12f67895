//! The adapter's pieces in headless Chromium: the `setTimeout` sleeper, two
//! connections made by the connector in one page exchanging data with
//! backpressure, and the `fetch` web seed against a Blob URL (which answers
//! `Range` like an HTTP server, without leaving the page).
//!
//! Run by `tests/run-browser-tests.sh` (a network namespace, Chromium flags).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use chunkswarm_core::driver::{
    ChannelEvent, ConnectError, HttpError, HttpOrigin, PeerChannel, PeerConnector, Sleeper,
};
use chunkswarm_wasm::web::channel::MAX_MESSAGE;
use chunkswarm_wasm::web::http::FetchWebSeed;
use chunkswarm_wasm::web::rtc::{RtcSettings, WebRtcConnector};
use chunkswarm_wasm::web::sleep::TimeoutSleeper;
use futures::StreamExt as _;
use futures::future::{self, Either};
use wasm_bindgen_test::*;
use web_time::Instant;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn the_sleeper_waits_and_clamps_huge_durations() {
    let started = Instant::now();
    TimeoutSleeper.sleep(Duration::from_millis(60)).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(55), "{elapsed:?}");
    // A year overflows setTimeout's 32-bit delay; unclamped it would fire at once.
    let year = TimeoutSleeper.sleep(Duration::from_secs(365 * 24 * 3600));
    let short = TimeoutSleeper.sleep(Duration::from_millis(30));
    assert!(matches!(
        future::select(year, short).await,
        Either::Right(_)
    ));
}

async fn connected_pair(connector: &WebRtcConnector) -> (PeerChannel, PeerChannel) {
    let offered = connector.create_offer().await.unwrap();
    assert!(
        offered.sdp.contains("a=candidate"),
        "non-trickle offer has candidates"
    );
    let answered = connector.accept_offer(&offered.sdp).await.unwrap();
    assert!(answered.sdp.contains("a=candidate"));
    let (a, b) = future::join(
        offered.pending.open(Some(answered.sdp)),
        answered.pending.open(None),
    )
    .await;
    (a.unwrap(), b.unwrap())
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt ^ (i >> 13) as u8)
        .collect()
}

#[wasm_bindgen_test]
async fn two_connections_exchange_bytes_with_backpressure() {
    let connector = WebRtcConnector::new(RtcSettings::default(), None);
    let (a, b) = connected_pair(&connector).await;
    let PeerChannel {
        sender: a_send,
        events: mut a_events,
    } = a;
    let PeerChannel {
        sender: b_send,
        events: mut b_events,
    } = b;

    // 8 MiB in writes of 192 KiB (each split into messages of at most 64 KiB):
    // the sender stops at `Writable(false)` and goes on at `Writable(true)`.
    let content = pattern(8 << 20, 0x5a);
    let sending = async {
        let (mut highs, mut lows) = (0, 0);
        for write in content.chunks(192 << 10) {
            a_send.send(Bytes::copy_from_slice(write)).unwrap();
            while let Some(ChannelEvent::Writable(false)) =
                futures::FutureExt::now_or_never(a_events.next()).flatten()
            {
                highs += 1;
                loop {
                    match a_events.next().await {
                        Some(ChannelEvent::Writable(true)) => break,
                        Some(ChannelEvent::Writable(false)) => {}
                        other => panic!("unexpected {other:?}"),
                    }
                }
                lows += 1;
            }
        }
        (highs, lows)
    };
    let receiving = async {
        let mut got = Vec::with_capacity(content.len());
        let mut largest = 0;
        while got.len() < content.len() {
            match b_events.next().await {
                Some(ChannelEvent::Data(data)) => {
                    largest = largest.max(data.len());
                    got.extend_from_slice(&data);
                }
                Some(ChannelEvent::Writable(_)) => {}
                None => panic!("channel closed after {} bytes", got.len()),
            }
        }
        (got, largest)
    };
    let ((highs, lows), (got, largest)) = future::join(sending, receiving).await;
    assert!(got == content, "bytes arrive in order, unchanged");
    assert!(largest <= MAX_MESSAGE, "message of {largest} bytes");
    assert!(
        highs > 0,
        "8 MiB at once must cross the 1 MiB high-water mark"
    );
    assert_eq!(highs, lows);

    // And the other way, then closing ends both streams.
    b_send.send(Bytes::from_static(b"bye")).unwrap();
    let Some(ChannelEvent::Data(bye)) = a_events.next().await else {
        panic!("no reply");
    };
    assert_eq!(&bye[..], b"bye");
    a_send.close();
    assert!(a_send.send(Bytes::from_static(b"late")).is_err());
    let ended = async { while b_events.next().await.is_some() {} };
    let timeout = TimeoutSleeper.sleep(Duration::from_secs(10));
    assert!(
        matches!(
            future::select(Box::pin(ended), timeout).await,
            Either::Left(_)
        ),
        "the remote's stream ends when the channel closes"
    );
    assert!(b_send.send(Bytes::from_static(b"late")).is_err());
}

#[wasm_bindgen_test]
async fn bad_session_descriptions_are_errors() {
    let connector = WebRtcConnector::new(RtcSettings::default(), None);
    let result = connector.accept_offer("v=0\r\nthis is not sdp\r\n").await;
    assert!(matches!(result, Err(ConnectError::BadSdp(_))), "{result:?}");
    let offered = connector.create_offer().await.unwrap();
    let result = offered.pending.open(Some("garbage".into())).await;
    assert!(matches!(result, Err(ConnectError::BadSdp(_))), "{result:?}");
}

fn blob_url(content: &[u8]) -> String {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(content));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    web_sys::Url::create_object_url_with_blob(&blob).unwrap()
}

#[wasm_bindgen_test]
async fn the_web_seed_fetches_exact_ranges() {
    let content = pattern(300_000, 7);
    let seed = FetchWebSeed::new(&blob_url(&content), Duration::from_secs(10));
    let middle = seed.get_range(100_000..165_536).await.unwrap();
    assert_eq!(&middle[..], &content[100_000..165_536]);
    let tail = seed.get_range(299_000..300_000).await.unwrap();
    assert_eq!(&tail[..], &content[299_000..]);
    // Past the end: the server cannot satisfy it.
    let past = seed.get_range(299_000..300_001).await;
    assert!(past.is_err(), "{past:?}");
    assert!(matches!(
        seed.get_range(5..5).await,
        Err(HttpError::Length { expected: 0, .. })
    ));
    // Ranges longer than one read buffer, one after another and at once
    // (the reused buffers must never mix two bodies).
    let big = pattern(3 << 20, 11);
    let seed = FetchWebSeed::new(&blob_url(&big), Duration::from_secs(10));
    for range in [0..(1 << 20) + 17, 5..1_500_000, (2 << 20)..(3 << 20)] {
        let got = seed.get_range(range.start as u64..range.end as u64).await;
        assert_eq!(&got.unwrap()[..], &big[range]);
    }
    let ranges: Vec<_> = (0..6).map(|i| i * 400_000..i * 400_000 + 700_001).collect();
    let fetched = future::join_all(
        ranges
            .iter()
            .map(|r| seed.get_range(r.start as u64..r.end as u64)),
    )
    .await;
    for (range, got) in ranges.into_iter().zip(fetched) {
        assert_eq!(&got.unwrap()[..], &big[range]);
    }
    let missing = FetchWebSeed::new("blob:http://127.0.0.1/nothing", Duration::from_secs(5));
    assert!(matches!(
        missing.get_range(0..10).await,
        Err(HttpError::Transport(_) | HttpError::Status(_))
    ));
}
