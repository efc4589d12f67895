//! Torrents made by real tools load with the same infohash and piece hashes,
//! and torrents chunkswarm makes load in those tools.
//!
//! Needs Debian's `mktorrent` and `transmission-cli` (`bash .ci/install`
//! installs them); the test fails, rather than skips, without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chunkswarm_core::metainfo::{Metainfo, TorrentBuilder};
use sha1::{Digest, Sha1};

const MIB: usize = 1 << 20;

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "`{name}` is not installed: run `bash .ci/install` (Debian: apt-get install mktorrent transmission-cli)"
    );
    Command::new(name)
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deterministic, incompressible content.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The infohash transmission-show reports for a torrent file.
fn transmission_hash(torrent: &Path) -> String {
    let shown = run(tool("transmission-show").arg(torrent));
    shown
        .lines()
        .find_map(|line| line.trim().strip_prefix("Hash:"))
        .map(|hash| hash.trim().to_lowercase())
        .unwrap_or_else(|| panic!("no Hash line in transmission-show output:\n{shown}"))
}

/// The content's bytes in torrent order: the file, or a folder's files in
/// the order the torrent lists them.
fn stream(root: &Path, metainfo: &Metainfo) -> Vec<u8> {
    if !metainfo.info().is_multi_file() {
        return std::fs::read(root).unwrap();
    }
    metainfo
        .info()
        .files()
        .iter()
        .flat_map(|file| {
            let path = file
                .path()
                .iter()
                .fold(root.to_path_buf(), |p, c| p.join(c));
            std::fs::read(path).unwrap()
        })
        .collect()
}

/// Checks a tool-made torrent against the content and transmission's infohash.
fn check_tool_torrent(target: &Path, torrent: &Path) -> Metainfo {
    let bytes = std::fs::read(torrent).unwrap();
    let metainfo = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(metainfo.info_hash().to_hex(), transmission_hash(torrent));

    let info = metainfo.info();
    let data = stream(target, &metainfo);
    assert_eq!(info.total_length(), data.len() as u64);
    assert_eq!(info.layout().piece_length(), MIB as u32);
    for piece in info.layout().pieces() {
        let range = info.layout().piece_range(piece);
        let slice = &data[range.start as usize..range.end as usize];
        let expected: [u8; 20] = Sha1::digest(slice).into();
        assert_eq!(info.piece_hash(piece).unwrap().0, expected, "piece {piece}");
        assert!(info.verify_piece(piece, slice));
    }
    metainfo
}

fn fixtures(dir: &Path) -> Vec<PathBuf> {
    let mut targets = Vec::new();
    for (name, len) in [
        ("one-byte.bin", 1),
        ("exactly-1mib.bin", MIB),
        ("1mib-plus-1.bin", MIB + 1),
        ("thirty-seven-mib.webm", 37 * MIB),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content(len, len as u64)).unwrap();
        targets.push(path);
    }
    let folder = dir.join("a folder");
    std::fs::create_dir_all(folder.join("sub dir")).unwrap();
    for (name, len) in [
        ("b.mkv", MIB / 3),
        ("a.txt", 12_345),
        ("sub dir/c.bin", 2 * MIB + 7),
        ("sub dir/d.srt", 999),
        ("z.bin", MIB),
    ] {
        std::fs::write(folder.join(name), content(len, 7 + len as u64)).unwrap();
    }
    targets.push(folder);
    targets
}

#[test]
fn tool_made_torrents_load_with_the_same_infohash_and_pieces() {
    let dir = tempfile::tempdir().unwrap();
    for target in fixtures(dir.path()) {
        let ours = TorrentBuilder::new().build_from_path(&target).unwrap();

        let by_mktorrent = dir.path().join("mktorrent.torrent");
        let _ = std::fs::remove_file(&by_mktorrent);
        run(tool("mktorrent")
            .args(["-l", "20", "-a", "wss://tracker.invalid/announce"])
            .args(["-w", "https://origin.invalid/media"])
            .arg("-o")
            .arg(&by_mktorrent)
            .arg(&target));
        let mk = check_tool_torrent(&target, &by_mktorrent);
        assert_eq!(mk.announce(), Some("wss://tracker.invalid/announce"));
        assert_eq!(mk.web_seeds(), ["https://origin.invalid/media"]);

        let by_transmission = dir.path().join("transmission.torrent");
        let _ = std::fs::remove_file(&by_transmission);
        run(tool("transmission-create")
            // Transmission 3.00 refuses `wss://` trackers.
            .args(["-s", "1024", "-t", "https://tracker.invalid/announce"])
            .arg("-o")
            .arg(&by_transmission)
            .arg(&target));
        let tr = check_tool_torrent(&target, &by_transmission);
        assert_eq!(tr.trackers(), ["https://tracker.invalid/announce"]);

        // All three list the same files in the same order, so the pieces agree.
        for other in [&mk, &tr] {
            assert_eq!(other.info().files(), ours.info().files(), "{target:?}");
            assert_eq!(other.info().piece_hashes(), ours.info().piece_hashes());
            assert_eq!(other.info().name(), ours.info().name());
        }
    }
}

#[test]
fn chunkswarm_torrents_load_in_transmission() {
    let dir = tempfile::tempdir().unwrap();
    for target in fixtures(dir.path()) {
        let ours = TorrentBuilder::new()
            // Transmission 3.00 lists only http(s) and udp trackers.
            .announce("https://tracker.invalid/announce")
            .announce("https://backup.invalid/announce")
            .web_seed("https://origin.invalid/media")
            .comment("made by the chunkswarm test suite")
            .creation_date(1_700_000_000)
            .build_from_path(&target)
            .unwrap();
        let path = dir.path().join("ours.torrent");
        std::fs::write(&path, ours.to_bytes()).unwrap();
        assert_eq!(transmission_hash(&path), ours.info_hash().to_hex());

        let shown = run(tool("transmission-show").arg(&path));
        let pieces = format!("Piece Count: {}", ours.info().layout().piece_count());
        assert!(shown.contains(&pieces), "{pieces} not in:\n{shown}");
        assert!(shown.contains("Tier #2"), "{shown}");
        assert!(shown.contains("https://backup.invalid/announce"), "{shown}");
        for file in ours.info().files() {
            let name = file.path().last().unwrap();
            assert!(shown.contains(name.as_str()), "{name} not in:\n{shown}");
        }
    }
}
