use super::*;
use crate::layout::LayoutError;

/// A single-file info dict with `pieces` hashes, as bencode text.
fn info(length: u64, piece_length: u64, pieces: usize) -> String {
    format!(
        "d6:lengthi{length}e4:name4:film12:piece lengthi{piece_length}e6:pieces{}:{}e",
        pieces * 20,
        "x".repeat(pieces * 20)
    )
}

fn torrent(info: &str) -> Vec<u8> {
    format!("d8:announce17:wss://t.invalid/a4:info{info}e").into_bytes()
}

fn info_error(info: &str) -> InfoError {
    match Metainfo::from_bytes(&torrent(info)) {
        Err(MetainfoError::Info(e)) => e,
        other => panic!("expected an info error, got {other:?}"),
    }
}

#[test]
fn parses_a_single_file_torrent() {
    let metainfo = Metainfo::from_bytes(&torrent(&info(3 << 20, 1 << 20, 3))).unwrap();
    let info = metainfo.info();
    assert_eq!(info.name(), "film");
    assert_eq!(info.total_length(), 3 << 20);
    assert_eq!(info.layout().piece_count(), 3);
    assert!(!info.is_multi_file());
    assert_eq!(info.files().len(), 1);
    assert_eq!(info.files()[0].path(), ["film"]);
    assert_eq!(metainfo.announce(), Some("wss://t.invalid/a"));
    assert_eq!(metainfo.trackers(), ["wss://t.invalid/a"]);
}

#[test]
fn infohash_covers_the_info_bytes_as_received() {
    // Keys out of order: not canonical, but the hash is of these exact bytes.
    let unsorted = format!(
        "d4:name4:film6:lengthi5e12:piece lengthi16384e6:pieces20:{}e",
        "y".repeat(20)
    );
    let metainfo = Metainfo::from_bytes(&torrent(&unsorted)).unwrap();
    assert_eq!(metainfo.info_hash(), InfoHash::of(unsorted.as_bytes()));
    assert_eq!(metainfo.info().encoded().as_ref(), unsorted.as_bytes());
    let again = Metainfo::from_bytes(&metainfo.to_bytes()).unwrap();
    assert_eq!(again, metainfo);
}

#[test]
fn parses_multi_file_offsets() {
    let info = format!(
        "d5:filesld6:lengthi10e4:pathl1:a5:x.mkveed6:lengthi0e4:pathl5:empty\
         eed6:lengthi7e4:pathl1:beee4:name3:dir12:piece lengthi8e6:pieces60:{}e",
        "z".repeat(60)
    );
    let metainfo = Metainfo::from_bytes(&torrent(&info)).unwrap();
    let files = metainfo.info().files();
    assert!(metainfo.info().is_multi_file());
    assert_eq!(files[0].path(), ["a", "x.mkv"]);
    assert_eq!(files[1].byte_range(), 10..10);
    assert_eq!(files[2].byte_range(), 10..17);
    assert_eq!(metainfo.info().total_length(), 17);
}

#[test]
fn reads_trackers_and_web_seeds_leniently() {
    let text = format!(
        "d8:announce3:one13:announce-listll3:one3:twoeli5eel5:threeee7:comment3:hey\
         4:info{}8:url-list17:https://o.invalide",
        info(1, 1, 1)
    );
    let metainfo = Metainfo::from_bytes(text.as_bytes()).unwrap();
    assert_eq!(metainfo.trackers(), ["one", "two", "three"]);
    assert_eq!(
        metainfo.announce_list().len(),
        2,
        "the all-integer tier is dropped"
    );
    assert_eq!(metainfo.web_seeds(), ["https://o.invalid"]);
    assert_eq!(metainfo.comment(), Some("hey"));
}

#[test]
fn rejects_inconsistent_info() {
    assert_eq!(
        info_error(&info(3 << 20, 1 << 20, 2)),
        InfoError::PieceCount {
            expected: 3,
            got: 2
        }
    );
    assert_eq!(
        info_error(&info(0, 1 << 20, 0)),
        InfoError::Layout(LayoutError::Empty)
    );
    assert_eq!(
        info_error(&info(5, 0, 1)),
        InfoError::Layout(LayoutError::PieceLength(0))
    );
    assert_eq!(
        info_error("d6:lengthi1e4:name1:a12:piece lengthi1e6:pieces3:abce"),
        InfoError::PiecesLength(3)
    );
    assert_eq!(
        info_error("d6:lengthi-1e4:name1:a12:piece lengthi1e6:pieces0:e"),
        InfoError::WrongType {
            key: "length",
            expected: "a non-negative integer"
        }
    );
    assert_eq!(
        info_error("d4:name1:a12:piece lengthi1e6:pieces0:e"),
        InfoError::AmbiguousMode
    );
    assert_eq!(
        info_error("d5:filesle4:name1:a12:piece lengthi1e6:pieces0:e"),
        InfoError::NoFiles
    );
    assert_eq!(
        info_error("d6:lengthi1e12:piece lengthi1e6:pieces20:xxxxxxxxxxxxxxxxxxxxe"),
        InfoError::Missing("name")
    );
    assert_eq!(
        info_error("d6:lengthi1e4:namei5e12:piece lengthi1e6:pieces0:e"),
        InfoError::WrongType {
            key: "name",
            expected: "a byte string"
        }
    );
}

#[test]
fn rejects_paths_that_escape_the_folder() {
    for bad in ["2:..", "1:.", "0:", "4:a/.."] {
        let info = format!(
            "d5:filesld6:lengthi1e4:pathl{bad}eee4:name1:d12:piece lengthi1e6:pieces20:{}e",
            "p".repeat(20)
        );
        assert!(
            matches!(info_error(&info), InfoError::UnsafePath(_)),
            "{bad}"
        );
    }
    let backslash = format!(
        "d6:lengthi1e4:name4:a\\..12:piece lengthi1e6:pieces20:{}e",
        "p".repeat(20)
    );
    assert!(matches!(info_error(&backslash), InfoError::UnsafePath(_)));
}

#[test]
fn rejects_non_torrents() {
    assert!(matches!(
        Metainfo::from_bytes(b"le"),
        Err(MetainfoError::NotATorrent(_))
    ));
    assert!(matches!(
        Metainfo::from_bytes(b"d4:info4:abcde"),
        Err(MetainfoError::NotATorrent(_))
    ));
    assert!(matches!(
        Metainfo::from_bytes(b"d4:infod"),
        Err(MetainfoError::Bencode(_))
    ));
    let huge = vec![b' '; MAX_METAINFO_LEN + 1];
    assert_eq!(
        Metainfo::from_bytes(&huge),
        Err(MetainfoError::TooLarge(MAX_METAINFO_LEN + 1))
    );
}

#[test]
fn builder_streams_pieces_and_round_trips() {
    let content: Vec<u8> = (0..(2 << 20) + 5).map(|i| (i % 251) as u8).collect();
    let metainfo = TorrentBuilder::new()
        .announce("wss://a.invalid")
        .announce("wss://b.invalid")
        .web_seed("https://o.invalid/film")
        .private(true)
        .build_from_reader("film", content.as_slice())
        .unwrap();
    let info = metainfo.info();
    assert_eq!(info.layout().piece_count(), 3);
    assert!(info.is_private());
    for piece in info.layout().pieces() {
        let range = info.layout().piece_range(piece);
        assert!(info.verify_piece(piece, &content[range.start as usize..range.end as usize]));
    }
    assert_eq!(metainfo.announce_list().len(), 2);
    let parsed = Metainfo::from_bytes(&metainfo.to_bytes()).unwrap();
    assert_eq!(parsed, metainfo);
}

#[test]
fn a_multi_file_torrent_of_readers_matches_one_of_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    std::fs::create_dir_all(root.join("cd 1")).unwrap();
    let files: [(&[&str], Vec<u8>); 3] = [
        (
            &["a.webm"],
            (0..70_000u32).map(|i| (i % 241) as u8).collect(),
        ),
        (&["cd 1", "b.opus"], vec![7; 50_001]),
        (&["cd 1", "c.webm"], Vec::new()),
    ];
    for (path, bytes) in &files {
        let file = path.iter().fold(root.clone(), |p, c| p.join(c));
        std::fs::write(file, bytes).unwrap();
    }
    let builder = TorrentBuilder::new()
        .piece_length(16 << 10)
        .web_seed("http://127.0.0.1/");
    let from_disk = builder.clone().build_from_path(&root).unwrap();
    let readers = files.iter().map(|(path, bytes)| {
        (
            path.iter().map(|c| c.to_string()).collect(),
            bytes.as_slice(),
        )
    });
    let from_readers = builder.build_from_files("album", readers).unwrap();
    assert!(from_readers.info().is_multi_file());
    assert_eq!(from_readers.info().files().len(), 3);
    assert_eq!(from_readers.to_bytes(), from_disk.to_bytes());

    // A path leaving the torrent's directory is refused.
    let escaping = [(vec!["..".to_string(), "x".to_string()], &b"x"[..])];
    assert!(
        TorrentBuilder::new()
            .build_from_files("album", escaping)
            .is_err()
    );
}

#[test]
fn builder_rejects_empty_content() {
    let err = TorrentBuilder::new()
        .build_from_reader("empty", &b""[..])
        .unwrap_err();
    assert!(matches!(
        err,
        CreateError::Info(InfoError::Layout(LayoutError::Empty))
    ));
}

#[test]
fn hasher_is_split_invariant() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let mut whole = PieceHasher::new(40_000);
    whole.update(&data);
    let mut split = PieceHasher::new(40_000);
    for chunk in data.chunks(999) {
        split.update(chunk);
    }
    let hashes = whole.finish();
    assert_eq!(hashes.len(), 3);
    assert_eq!(hashes, split.finish());
}

#[test]
fn infohash_hex_round_trip() {
    let hash = InfoHash::of(b"anything");
    assert_eq!(InfoHash::from_hex(&hash.to_hex()), Some(hash));
    assert_eq!(
        InfoHash::from_hex(&hash.to_hex().to_uppercase()),
        Some(hash)
    );
    assert_eq!(InfoHash::from_hex("zz"), None);
    assert_eq!(InfoHash::from_hex(&"g".repeat(40)), None);
}
