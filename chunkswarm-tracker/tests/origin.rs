//! The HTTP origin: path safety, Range per RFC 9110, torrents, catalog.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use chunkswarm_core::magnet::Magnet;
use chunkswarm_tracker::metainfo::Metainfo;
use chunkswarm_tracker::{
    Catalog, CatalogEntry, CatalogError, Config, Limits, SearchFuture, Tracker,
};
use common::{TestTracker, id};
use serde_json::json;

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-LIBRARY";
/// 3 MiB and a bit: four 1 MiB pieces, and several read chunks.
const FILM_LEN: usize = (3 << 20) + 123;

fn film_bytes() -> Vec<u8> {
    (0..FILM_LEN).map(|i| (i % 251) as u8).collect()
}

/// A library under `dir/library`, with a secret beside it.
fn make_library(dir: &Path) -> std::path::PathBuf {
    let lib = dir.join("library");
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
    std::fs::write(lib.join("film.webm"), film_bytes()).unwrap();
    std::fs::write(
        lib.join("film.webm.json"),
        r#"{"title":"A Film","year":2008,"description":"Rabbits.","duration":596.5,"poster":"poster.jpg"}"#,
    )
    .unwrap();
    std::fs::write(lib.join("poster.jpg"), b"jpeg").unwrap();
    std::fs::write(lib.join("sub/song.mp3"), b"0123456789").unwrap();
    std::fs::write(lib.join("empty.mp4"), b"").unwrap();
    std::fs::write(lib.join("page.html"), b"<script>alert(1)</script>").unwrap();
    std::fs::write(lib.join(".hidden.webm"), SECRET).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.join("secret.txt"), lib.join("escape.webm")).unwrap();
        std::os::unix::fs::symlink(dir, lib.join("updir")).unwrap();
    }
    lib
}

async fn start(dir: &Path) -> TestTracker {
    start_with(dir, false).await
}

async fn start_with(dir: &Path, prepare_torrents: bool) -> TestTracker {
    let config = Config {
        media_dir: Some(make_library(dir)),
        prepare_torrents,
        limits: Limits {
            ip_requests_per_second: 0,
            ..Limits::default()
        },
        ..Config::default()
    };
    TestTracker::start(config).await
}

#[tokio::test]
async fn no_path_leaves_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path()).await;
    let corpus = [
        "/media/../secret.txt",
        "/media/..%2fsecret.txt",
        "/media/..%2Fsecret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/%2E%2E%2Fsecret.txt",
        "/media/.%2e/secret.txt",
        "/media/%252e%252e%252fsecret.txt",
        "/media/%252e%252e/secret.txt",
        "/media/..%5csecret.txt",
        "/media/..%5Csecret.txt",
        "/media/..\\secret.txt",
        "/media/sub/..\\..\\secret.txt",
        "/media//etc/passwd",
        "/media/%2fetc%2fpasswd",
        "/media/%2Fetc/passwd",
        "/media/sub/../../secret.txt",
        "/media/sub/%2e%2e/%2e%2e/secret.txt",
        "/media/film.webm%00.txt",
        "/media/%00",
        "/media/%c0%ae%c0%ae/secret.txt",
        "/media/..%c0%afsecret.txt",
        "/media/%e0%80%ae%e0%80%ae/secret.txt",
        "/media/C:%5cWindows%5cwin.ini",
        "/media/C:/Windows/win.ini",
        "/media/escape.webm",
        "/media/updir/secret.txt",
        "/media/.hidden.webm",
        "/media/%2ehidden.webm",
        "/media/",
        "/media/sub/",
        "/media/%",
        "/media/%zz",
        "/../secret.txt",
        "/media/../../../../../../etc/passwd",
        "/torrents/../secret.txt.torrent",
        "/torrents/%2e%2e%2fsecret.txt.torrent",
        "/torrents/escape.webm.torrent",
        "/torrents/updir/secret.txt.torrent",
        "http://localhost/media/../secret.txt",
    ];
    for target in corpus {
        let response = t
            .http(&format!(
                "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            ))
            .await;
        assert!(
            matches!(response.status, 400 | 404),
            "{target}: {}",
            response.status
        );
        assert!(
            !response.text().contains(SECRET),
            "{target} leaked the secret"
        );
    }
    // A NUL byte sent raw does not get through either.
    let response = t
        .http("GET /media/film.webm\0 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    assert!(matches!(response.status, 400 | 404));
    let metrics = t.get("/metrics").await.text();
    assert!(!metrics.contains("reason=\"bad_path\"} 0"));
}

#[tokio::test]
async fn ranges_follow_rfc_9110() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path()).await;
    let film = film_bytes();
    let len = film.len();

    let full = t.get("/media/film.webm").await;
    assert_eq!(full.status, 200);
    assert_eq!(full.header("content-type"), Some("video/webm"));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        full.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(full.body == film);

    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-0", 0, 0),
        ("bytes=-1", len - 1, len - 1),
        (&format!("bytes={}-", len - 1), len - 1, len - 1),
        (
            &format!("bytes={}-{}", len - 1, len + 100),
            len - 1,
            len - 1,
        ),
        ("bytes=0-", 0, len - 1),
        ("bytes=-100", len - 100, len - 1),
        (&format!("bytes=-{}", len * 2), 0, len - 1),
        ("bytes=262000-786500", 262_000, 786_500),
        ("bytes=1048575-1048576", 1_048_575, 1_048_576),
    ];
    for (range, first, last) in cases {
        let r = t
            .get_with("/media/film.webm", &format!("Range: {range}\r\n"))
            .await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {first}-{last}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((last - first + 1).to_string().as_str()),
            "{range}"
        );
        assert!(r.body == film[*first..=*last], "{range}: wrong bytes");
    }

    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 5, len + 9),
        "bytes=-0".to_owned(),
    ] {
        let r = t
            .get_with("/media/film.webm", &format!("Range: {range}\r\n"))
            .await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
    }

    // Invalid or foreign ranges are ignored: the whole file.
    for range in ["bytes=5-2", "bytes=abc", "lines=1-2"] {
        let r = t
            .get_with("/media/film.webm", &format!("Range: {range}\r\n"))
            .await;
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.body.len(), len);
    }

    // HEAD: headers only, and Range does not apply.
    let head = t.http("HEAD /media/film.webm HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: bytes=0-0\r\n\r\n").await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );

    // If-Range: a stale validator gets the whole file, a matching one the range.
    let etag = full.header("etag").unwrap().to_owned();
    let stale = t
        .get_with(
            "/media/film.webm",
            "Range: bytes=0-0\r\nIf-Range: \"other\"\r\n",
        )
        .await;
    assert_eq!(stale.status, 200);
    let fresh = t
        .get_with(
            "/media/film.webm",
            &format!("Range: bytes=0-0\r\nIf-Range: {etag}\r\n"),
        )
        .await;
    assert_eq!(fresh.status, 206);
    let cached = t
        .get_with("/media/film.webm", &format!("If-None-Match: {etag}\r\n"))
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
}

#[tokio::test]
async fn multiple_ranges_are_multipart_and_sizes_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path()).await;
    let film = film_bytes();
    let len = film.len();

    let r = t
        .get_with("/media/film.webm", "Range: bytes=0-1, 10-12, -2\r\n")
        .await;
    assert_eq!(r.status, 206);
    let content_type = r.header("content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap();
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    let text = r.body.clone();
    let delimiter = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &text[..];
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let body_start = head_end + 4;
        let next = find(&rest[body_start..], delimiter.as_bytes()).unwrap();
        parts.push((head, rest[body_start..body_start + next].to_vec()));
    }
    assert_eq!(parts.len(), 3);
    assert!(
        parts[0]
            .0
            .contains(&format!("Content-Range: bytes 0-1/{len}"))
    );
    assert_eq!(parts[0].1, film[0..2]);
    assert_eq!(parts[1].1, film[10..13]);
    assert!(parts[2].0.contains(&format!(
        "Content-Range: bytes {}-{}/{len}",
        len - 2,
        len - 1
    )));
    assert_eq!(parts[2].1, film[len - 2..]);
    assert!(
        parts
            .iter()
            .all(|(h, _)| h.contains("Content-Type: video/webm"))
    );

    // Overlapping ranges are merged into one part.
    let r = t
        .get_with("/media/film.webm", "Range: bytes=0-5,3-9\r\n")
        .await;
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-9/{len}").as_str())
    );

    // Small and empty files.
    let song = t
        .get_with("/media/sub/song.mp3", "Range: bytes=-3\r\n")
        .await;
    assert_eq!(song.status, 206);
    assert_eq!(song.header("content-type"), Some("audio/mpeg"));
    assert_eq!(song.body, b"789");
    let empty = t.get("/media/empty.mp4").await;
    assert_eq!(
        (empty.status, empty.header("content-length")),
        (200, Some("0"))
    );
    assert_eq!(
        t.get_with("/media/empty.mp4", "Range: bytes=0-0\r\n")
            .await
            .status,
        416
    );
    assert_eq!(
        t.get_with("/media/empty.mp4", "Range: bytes=-5\r\n")
            .await
            .status,
        200
    );
    // Active content is never served as such.
    let page = t.get("/media/page.html").await;
    assert_eq!(
        page.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn torrents_announce_here_and_seed_from_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path()).await;
    let response = t.get("/torrents/film.webm.torrent").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/x-bittorrent")
    );
    let torrent = Metainfo::from_bytes(&response.body).unwrap();
    assert_eq!(
        torrent.announce(),
        Some(format!("ws://{}/announce", t.addr).as_str())
    );
    let web_seed = format!("http://{}/media/film.webm", t.addr);
    assert_eq!(torrent.web_seeds(), std::slice::from_ref(&web_seed));
    let info = torrent.info();
    assert_eq!(info.layout().piece_count(), 4);
    assert_eq!(info.layout().piece_length(), 1 << 20);
    let film = film_bytes();
    for piece in info.layout().pieces() {
        let range = info.layout().piece_range(piece);
        assert!(info.verify_piece(piece, &film[range.start as usize..range.end as usize]));
    }
    // Cached: the same bytes again, and no hashing.
    let built = || async {
        t.get("/metrics")
            .await
            .text()
            .lines()
            .find(|l| l.starts_with("chunkswarm_tracker_torrents_built_total"))
            .unwrap()
            .to_owned()
    };
    let before = built().await;
    let again = t.get("/torrents/film.webm.torrent").await;
    assert!(again.body == response.body);
    assert_eq!(built().await, before);

    // The web seed serves the content.
    let path = web_seed.split_once(&t.addr.to_string()).unwrap().1;
    assert!(t.get(path).await.body == film);

    // Not media, not there.
    assert_eq!(t.get("/torrents/poster.jpg.torrent").await.status, 404);
    assert_eq!(t.get("/torrents/missing.webm.torrent").await.status, 404);
    assert_eq!(t.get("/torrents/film.webm").await.status, 404);

    // A changed file gets a new torrent.
    let lib = dir.path().join("library");
    std::fs::write(lib.join("film.webm"), &film[..2 << 20]).unwrap();
    let changed = t.get("/torrents/film.webm.torrent").await;
    let changed = Metainfo::from_bytes(&changed.body).unwrap();
    assert_ne!(changed.info_hash(), torrent.info_hash());
    assert_eq!(changed.info().layout().piece_count(), 2);
}

#[tokio::test]
async fn torrents_use_the_configured_piece_length() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestTracker::start(Config {
        media_dir: Some(make_library(dir.path())),
        piece_length: 256 << 10,
        prepare_torrents: false,
        ..Config::default()
    })
    .await;
    let response = t.get("/torrents/film.webm.torrent").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let torrent = Metainfo::from_bytes(&response.body).unwrap();
    let layout = torrent.info().layout();
    assert_eq!(layout.piece_length(), 256 << 10);
    assert_eq!(layout.piece_count(), 13);

    for bad in [0, (64 << 20) + 1] {
        let config = Config {
            piece_length: bad,
            ..Config::default()
        };
        let error = Tracker::new(config).unwrap_err();
        assert!(error.to_string().contains("piece length"), "{error}");
    }
}

#[tokio::test]
async fn catalog_search_shows_metadata_and_live_peers() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path()).await;
    let all = t.json("/api/search?q=").await;
    let titles: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["A Film", "song.mp3"]);

    let found = t.json("/api/search?q=rabbits%202008").await;
    assert_eq!(
        found["results"].as_array().unwrap().len(),
        0,
        "year is not text"
    );
    let found = t.json("/api/search?q=RABBITS").await;
    let entry = &found["results"][0];
    assert_eq!(entry["title"], "A Film");
    assert_eq!(entry["year"], 2008);
    assert_eq!(entry["size"], FILM_LEN);
    assert_eq!(entry["duration_seconds"], 596.5);
    assert_eq!(
        entry["poster"],
        format!("http://{}/media/poster.jpg", t.addr)
    );
    assert_eq!(
        entry["torrent_url"],
        format!("http://{}/torrents/film.webm.torrent", t.addr)
    );
    assert!(entry["info_hash"].is_null());
    assert!(entry["magnet"].is_null(), "no torrent, no link yet");

    // Once the torrent exists, the entry has its infohash and live peers.
    let torrent = Metainfo::from_bytes(&t.get("/torrents/film.webm.torrent").await.body).unwrap();
    let ih = common::bin(*torrent.info_hash().as_bytes());
    let mut peer = t.client().await;
    let mut seed = common::announce(&ih, &id(1), &[]);
    seed["left"] = json!(0);
    peer.send(&seed).await;
    peer.recv().await;
    let found = t.json("/api/search?q=film").await;
    let entry = &found["results"][0];
    assert_eq!(entry["info_hash"], torrent.info_hash().to_hex());
    // Its magnet link names the torrent, its tracker, web seed and .torrent.
    let link = entry["magnet"].as_str().expect("a magnet link");
    let magnet = Magnet::parse(link).unwrap();
    assert_eq!(magnet.info_hash(), torrent.info_hash());
    assert_eq!(magnet.name(), Some("film.webm"));
    assert_eq!(magnet.length(), Some(FILM_LEN as u64));
    assert_eq!(magnet.trackers(), [format!("ws://{}/announce", t.addr)]);
    assert_eq!(
        magnet.web_seeds(),
        [format!("http://{}/media/film.webm", t.addr)]
    );
    assert_eq!(magnet.sources(), [entry["torrent_url"].as_str().unwrap()]);
    assert_eq!(
        (entry["peers"].as_u64(), entry["seeders"].as_u64()),
        (Some(1), Some(1))
    );
    // The library knows the piece count, so a bitfield needs no x_cs_pieces.
    let mut bits = common::announce(&ih, &id(2), &[]);
    bits["x_cs_bitfield"] = json!("80");
    let mut other = t.client().await;
    other.send(&bits).await;
    assert!(other.recv().await.get("warning message").is_none());

    assert_eq!(
        t.get(&format!("/api/search?q={}", "x".repeat(300)))
            .await
            .status,
        400
    );
}

/// A preflight as a browser sends it before a cross-origin request with
/// `headers` (none: no `Access-Control-Request-Headers`).
async fn preflight(t: &TestTracker, headers: Option<&str>) -> common::Response {
    let requested = headers.map_or(String::new(), |h| {
        format!("Access-Control-Request-Headers: {h}\r\n")
    });
    t.http(&format!(
        "OPTIONS /media/film.webm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Origin: https://other.example\r\nAccess-Control-Request-Method: GET\r\n{requested}\r\n"
    ))
    .await
}

fn allows(response: &common::Response, name: &str) -> bool {
    response
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .split(',')
        .any(|h| h.trim().eq_ignore_ascii_case(name))
}

#[tokio::test]
async fn preflights_allow_what_webtorrent_and_browsers_send() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path()).await;
    // WebTorrent's web-seed request: Range with Cache-Control.
    let asked = "cache-control, range, if-range, pragma";
    let response = preflight(&t, Some(asked)).await;
    assert_eq!(response.status, 204);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert!(
        response
            .header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    for name in asked.split(", ") {
        assert!(allows(&response, name), "{name} not allowed: {response:?}");
    }
    assert!(
        response
            .header("vary")
            .unwrap()
            .contains("Access-Control-Request-Headers")
    );
    // No list, or a malformed one: the default list, which has them all.
    for asked in [None, Some("range, bad name")] {
        let response = preflight(&t, asked).await;
        for name in ["Range", "If-Range", "Cache-Control", "If-None-Match"] {
            assert!(allows(&response, name), "{asked:?}: {name} not allowed");
        }
        assert!(!allows(&response, "bad name"));
    }
    // The request itself, with those headers, is served with CORS.
    let get = t
        .get_with(
            "/media/film.webm",
            "Origin: https://other.example\r\nCache-Control: no-cache\r\nRange: bytes=0-9\r\n",
        )
        .await;
    assert_eq!(get.status, 206);
    assert_eq!(get.header("access-control-allow-origin"), Some("*"));
    assert_eq!(get.body.len(), 10);
}

#[tokio::test]
async fn cors_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path()).await;
    let preflight = t
        .http(
            "OPTIONS /media/film.webm HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOrigin: http://demo\r\n\
             Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: range\r\n\r\n",
        )
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(allows(&preflight, "range"));
    let get = t
        .get_with("/media/sub/song.mp3", "Origin: http://demo\r\n")
        .await;
    assert_eq!(get.header("access-control-allow-origin"), Some("*"));
    assert!(
        get.header("access-control-expose-headers")
            .unwrap()
            .contains("Content-Range")
    );

    assert_eq!(t.get("/healthz").await.text(), "ok\n");
    let metrics = t.get("/metrics").await;
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    for name in [
        "connections",
        "swarms",
        "announces_total",
        "offers_relayed_total",
        "origin_bytes_total",
    ] {
        assert!(
            text.contains(&format!("\nchunkswarm_tracker_{name} ")),
            "{name} missing"
        );
    }
    assert_eq!(t.get("/announce").await.status, 426);
}

#[tokio::test]
async fn library_torrents_are_prepared_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let t = start_with(dir.path(), true).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let found = t.json("/api/search?q=").await;
        let results = found["results"].as_array().unwrap();
        if results.iter().all(|r| r["info_hash"].is_string()) {
            assert_eq!(results.len(), 2);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "torrents never prepared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A catalog standing in for a remote movie-search API.
#[derive(Debug)]
struct Remote {
    fail: bool,
}

impl Catalog for Remote {
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> SearchFuture<'a> {
        Box::pin(async move {
            if self.fail {
                return Err(CatalogError::Backend("unreachable".to_owned()));
            }
            let entry = CatalogEntry {
                title: format!("Remote result for {query}"),
                info_hash: Some("ab".repeat(20)),
                ..CatalogEntry::default()
            };
            Ok(vec![entry; limit.min(3)])
        })
    }
}

#[tokio::test]
async fn another_catalog_can_answer_searches() {
    let config = Config::default();
    let tracker =
        Tracker::with_catalog(config.clone(), std::sync::Arc::new(Remote { fail: false })).unwrap();
    let t = TestTracker::start_tracker(tracker).await;
    let found = t.json("/api/search?q=space&limit=2").await;
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["title"], "Remote result for space");
    assert_eq!(
        (results[0]["peers"].as_u64(), results[0]["seeders"].as_u64()),
        (Some(0), Some(0))
    );

    let failing =
        Tracker::with_catalog(config, std::sync::Arc::new(Remote { fail: true })).unwrap();
    let t = TestTracker::start_tracker(failing).await;
    assert_eq!(t.get("/api/search?q=x").await.status, 502);
}
