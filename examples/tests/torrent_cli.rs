//! The `torrent` example: create a torrent, show it, and fail clearly on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn torrent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_torrent"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn creates_and_shows_a_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("clip.webm");
    std::fs::write(&media, vec![42u8; 3_000_000]).unwrap();
    let out = dir.path().join("clip.torrent");
    let created = torrent(&[
        "create",
        media.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--announce",
        "wss://tracker.invalid/announce",
        "--web-seed",
        "https://origin.invalid/clip.webm",
    ]);
    assert!(created.status.success(), "{created:?}");
    let infohash = String::from_utf8(created.stdout).unwrap();
    let infohash = infohash.split_whitespace().next().unwrap().to_owned();

    let shown = torrent(&["show", out.to_str().unwrap()]);
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8(shown.stdout).unwrap();
    assert!(
        text.contains(&format!("infohash:     {infohash}")),
        "{text}"
    );
    assert!(text.contains("pieces:       3 of 1048576 bytes"), "{text}");
    assert!(
        text.contains("web seed:     https://origin.invalid/clip.webm"),
        "{text}"
    );
}

#[test]
fn bad_input_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.torrent");
    std::fs::write(&garbage, b"d4:infoi1ee").unwrap();
    for args in [
        vec!["show", garbage.to_str().unwrap()],
        vec!["show", "/nonexistent/file.torrent"],
        vec!["create"],
        vec!["create", "/nonexistent/path"],
        vec!["create", ".", "--piece-length", "0"],
        vec!["frobnicate"],
    ] {
        let out = torrent(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("torrent: "), "{args:?}: {stderr}");
    }
}
