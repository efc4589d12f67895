//! The two library examples run as a newcomer would run them, on loopback:
//! `fetch_file` (a torrent by URL into a file with a progress line) and
//! `swarm_in_one_process` (tracker, seeder and fetcher in one program).
//! Each runs inside a network namespace of its own (`unshare --net`,
//! loopback only), as CI runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netns;

use std::process::{Command, Output};
use std::time::Duration;

use chunkswarm_tracker::{Config, Tracker};

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 73) ^ (i >> 11)) as u8).collect()
}

/// Runs a binary of this crate to its end, at most two minutes.
fn run(command: &mut Command) -> Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        // Still running after two minutes: end it (by its own id, while it
        // is still our child) so the test fails rather than hangs.
        if finished
            .recv_timeout(Duration::from_secs(120))
            .is_err_and(|e| e == std::sync::mpsc::RecvTimeoutError::Timeout)
        {
            let _ = Command::new("kill").arg(id.to_string()).status();
        }
    });
    let output = child.wait_with_output().unwrap();
    drop(done);
    guard.join().unwrap();
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_file_gets_a_torrent_by_url_with_a_progress_line() {
    if !netns::in_namespace("fetch_file_gets_a_torrent_by_url_with_a_progress_line") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let data = content(3_000_000);
    std::fs::write(media.join("clip.webm"), &data).unwrap();
    let config = Config {
        media_dir: Some(media),
        piece_length: 256 << 10,
        ..Config::default()
    };
    let tracker = Tracker::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let out = dir.path().join("fetched.webm");
    let output = run(Command::new(env!("CARGO_BIN_EXE_fetch_file"))
        .arg(tracker.torrent_url("clip.webm"))
        .arg(&out)
        .env("CHUNKSWARM_LOOPBACK", "1"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("KiB from the web seed"), "{stderr}");
    assert!(stderr.contains("100.0 %"), "{stderr}");
    assert!(
        std::fs::read(&out).unwrap() == data,
        "the fetched file differs"
    );
    tracker.stop().await.unwrap();
}

#[test]
fn swarm_in_one_process_moves_the_file_over_webrtc() {
    if !netns::in_namespace("swarm_in_one_process_moves_the_file_over_webrtc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = content(5_000_000);
    let file = dir.path().join("film.webm");
    std::fs::write(&file, &data).unwrap();
    let out = dir.path().join("copy.webm");
    let output = run(Command::new(env!("CARGO_BIN_EXE_swarm_in_one_process"))
        .arg(&file)
        .arg(&out));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(std::fs::read(&out).unwrap() == data, "the copy differs");
    let expected = format!("{} bytes from the peer, 0 over HTTP", data.len());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn bad_arguments_get_a_usage_line_not_a_panic() {
    for exe in [
        env!("CARGO_BIN_EXE_fetch_file"),
        env!("CARGO_BIN_EXE_swarm_in_one_process"),
    ] {
        let output = run(&mut Command::new(exe));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("usage:") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
    let missing = run(Command::new(env!("CARGO_BIN_EXE_swarm_in_one_process"))
        .arg("/nonexistent/film.webm")
        .arg("/nonexistent/out.webm"));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("/nonexistent/film.webm") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn the_examples_stay_as_short_as_promised() {
    let lines = |source: &str| source.lines().count();
    assert!(lines(include_str!("../src/bin/fetch_file.rs")) <= 40);
    assert!(lines(include_str!("../src/bin/swarm_in_one_process.rs")) <= 60);
}
