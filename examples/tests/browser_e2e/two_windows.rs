//! The demo's own case for origin offload: two windows of the demo play the
//! sample 4 s apart from an origin capped at 256 KiB/s, with no other peer.
//! The origin serves at most 1.15 copies of the file in all, and the second
//! window gets at least 90 % of its bytes from the first: the playback
//! rescues it starts on the slow origin before it meets the first window
//! are raced by the first window once they meet, and the pieces neither
//! holds yet it leaves to the first, which plays them first and passes them
//! on. Before that last rule, seven runs measured 92.8–100 % six times and
//! 85.5 % once, when the second window fetched four such pieces; with it,
//! four runs measured 100 % (1.00 copies each time).

use std::time::Duration;

use chunkswarm_examples::demo::sample_media_dir;
use sha2::{Digest as _, Sha256};

use super::harness::{artifacts, browser, in_namespace};
use super::{SERVER, finish, one_at_a_time, start_server};

const TEST_NAME: &str = "two_windows::two_playing_windows_pay_the_origin_about_once";
const ORIGIN_RATE: &str = "256k";
/// How long after the first window the second one opens.
const APART: Duration = Duration::from_secs(4);

#[test]
fn two_playing_windows_pay_the_origin_about_once() {
    let _turn = one_at_a_time();
    if in_namespace(TEST_NAME) {
        inside_the_namespace();
    }
}

fn inside_the_namespace() {
    let artifacts = artifacts().join("two-windows");
    std::fs::create_dir_all(&artifacts).unwrap();
    let (mut server, _chromedriver, webdriver) = start_server(ORIGIN_RATE, "info", &artifacts);
    let sample = std::fs::read(sample_media_dir().join("sample.webm")).unwrap();
    let sha256 = hex::encode(Sha256::digest(&sample));

    let url = format!("http://{SERVER}/?autoplay=sample.webm");
    let (page_a, profile_a) = browser(&webdriver, "a");
    page_a.goto(&url).unwrap();
    std::thread::sleep(APART);
    let (page_b, profile_b) = browser(&webdriver, "b");
    page_b.goto(&url).unwrap();
    let a = finish(&page_a, "A", &artifacts, None, None);
    let b = finish(&page_b, "B", &artifacts, None, None);
    for (name, page) in [("A", &a), ("B", &b)] {
        assert_eq!(
            page["sha256"].as_str(),
            Some(sha256.as_str()),
            "page {name}'s file"
        );
    }
    let bytes =
        |page: &serde_json::Value, field: &str| page["stats"][field].as_f64().unwrap_or(0.0);
    let total = sample.len() as f64;
    let b_share = bytes(&b, "p2pBytes") / total;
    let copies = (bytes(&a, "httpBytes") + bytes(&b, "httpBytes")) / total;
    eprintln!(
        "two windows {APART:?} apart: B got {:.1} % from peers; the origin served {copies:.2} copies",
        100.0 * b_share
    );
    let played = a["currentTimeBeforeDone"].as_f64().unwrap_or(0.0);
    assert!(
        played > 0.0,
        "page A's video did not play while it downloaded"
    );
    assert!(
        b_share >= 0.9,
        "page B got only {:.1} % of its bytes from page A",
        100.0 * b_share
    );
    assert!(
        copies <= 1.15,
        "the origin served {copies:.2} copies of the file"
    );

    drop((page_a, page_b));
    drop((profile_a, profile_b));
    server.check();
}
