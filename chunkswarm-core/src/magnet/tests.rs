use proptest::prelude::*;

use super::*;
use crate::metainfo::{Metainfo, TorrentBuilder};

const HEX: &str = "c9e15763f722f23e98a29decdfae341b98d53056";
const BASE32: &str = "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW";

fn hash() -> InfoHash {
    InfoHash::from_hex(HEX).unwrap()
}

#[test]
fn reads_every_field_in_hex_and_base32() {
    let link = format!(
        "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny&xl=276134947\
         &tr=wss%3A%2F%2Fa.example%2Fannounce&tr.1=wss://b.example/announce&tr=wss%3A%2F%2Fa.example%2Fannounce\
         &ws=https%3A%2F%2Fmedia.example%2Fbbb.webm&xs=https%3A%2F%2Fmedia.example%2Fbbb.torrent\
         &as=https%3A%2F%2Fmirror.example%2Fbbb.webm&x.pe=10.0.0.1%3A6881&so=0"
    );
    let magnet = Magnet::parse(&link).unwrap();
    assert_eq!(magnet.info_hash(), hash());
    assert_eq!(magnet.name(), Some("Big Buck Bunny"));
    assert_eq!(magnet.length(), Some(276_134_947));
    assert_eq!(
        magnet.trackers(),
        ["wss://a.example/announce", "wss://b.example/announce"]
    );
    assert_eq!(magnet.web_seeds(), ["https://media.example/bbb.webm"]);
    assert_eq!(magnet.sources(), ["https://media.example/bbb.torrent"]);
    assert_eq!(
        magnet.acceptable_sources(),
        ["https://mirror.example/bbb.webm"]
    );

    for topic in [BASE32, &BASE32.to_lowercase(), &HEX.to_uppercase()] {
        let magnet = Magnet::parse(&format!("MAGNET:?xt=URN:BTIH:{topic}")).unwrap();
        assert_eq!(magnet.info_hash(), hash(), "{topic}");
        assert_eq!(magnet.name(), None);
    }
}

#[test]
fn a_v2_topic_beside_a_v1_one_is_skipped() {
    let v2 = "urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
    let both = format!("magnet:?xt={v2}&xt=urn:btih:{HEX}");
    assert_eq!(Magnet::parse(&both).unwrap().info_hash(), hash());
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt={v2}")),
        Err(MagnetError::OnlyV2)
    );
    // The same hash twice, in either form, is one topic.
    let twice = format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{BASE32}");
    assert_eq!(Magnet::parse(&twice).unwrap().info_hash(), hash());
}

#[test]
fn bad_links_are_refused_with_the_reason() {
    let cases: &[(&str, MagnetError)] = &[
        ("https://example.com/x.torrent", MagnetError::NotMagnet),
        ("magnet:", MagnetError::NotMagnet),
        ("magnet:?dn=nothing", MagnetError::MissingInfoHash),
        ("magnet:?xt=urn:sha1:abcd", MagnetError::MissingInfoHash),
        (
            "magnet:?xt=urn:btih:c9e15763",
            MagnetError::BadInfoHash("c9e15763".into()),
        ),
        (
            "magnet:?xt=urn:btih:g9e15763f722f23e98a29decdfae341b98d53056",
            MagnetError::BadInfoHash("g9e15763f722f23e98a29decdfae341b98d53056".into()),
        ),
        (
            "magnet:?xt=urn:btih:ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMC1",
            MagnetError::BadInfoHash("ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMC1".into()),
        ),
        (
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&xt=urn:btih:09e15763f722f23e98a29decdfae341b98d53056",
            MagnetError::ConflictingInfoHashes,
        ),
        (
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&dn=%G1",
            MagnetError::BadEncoding { key: "dn".into() },
        ),
        (
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&tr=%+1",
            MagnetError::BadEncoding { key: "tr".into() },
        ),
        (
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&tr=ws%3",
            MagnetError::BadEncoding { key: "tr".into() },
        ),
        (
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&dn=%FF%FE",
            MagnetError::BadEncoding { key: "dn".into() },
        ),
        (
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&xl=-5",
            MagnetError::BadLength("-5".into()),
        ),
        (
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&xl=99999999999999999999999",
            MagnetError::BadLength("99999999999999999999999".into()),
        ),
    ];
    for (link, expected) in cases {
        assert_eq!(Magnet::parse(link).as_ref(), Err(expected), "{link}");
    }
    let huge = format!(
        "magnet:?xt=urn:btih:{HEX}&dn={}",
        "a".repeat(MAX_MAGNET_LEN)
    );
    assert_eq!(Magnet::parse(&huge), Err(MagnetError::TooLong(huge.len())));
}

#[test]
fn a_torrents_link_names_it_and_reads_back() {
    let torrent = TorrentBuilder::new()
        .announce("wss://tracker.example/announce")
        .web_seed("https://media.example/film & more.webm")
        .build_from_reader("film & more.webm", vec![1u8; 40_000].as_slice())
        .unwrap();
    let magnet = Magnet::from_metainfo(&torrent).with_source("https://media.example/film.torrent");
    let link = magnet.to_string();
    assert!(
        link.starts_with(&format!(
            "magnet:?xt=urn:btih:{}&dn=film%20%26%20more.webm&xl=40000&tr=wss%3A%2F%2F",
            torrent.info_hash().to_hex()
        )),
        "{link}"
    );
    let back: Magnet = link.parse().unwrap();
    assert_eq!(back, magnet);
    assert_eq!(back.web_seeds(), ["https://media.example/film & more.webm"]);
    assert_eq!(back.sources(), ["https://media.example/film.torrent"]);
}

#[test]
fn a_torrent_resolves_its_link_and_gains_its_hints() {
    let torrent = TorrentBuilder::new()
        .announce("wss://a.example/announce")
        .web_seed("https://media.example/x")
        .build_from_reader("x", vec![5u8; 20_000].as_slice())
        .unwrap();
    let link = format!(
        "magnet:?xt=urn:btih:{}&tr=wss%3A%2F%2Fb.example%2Fannounce&tr=wss%3A%2F%2Fa.example%2Fannounce\
         &ws=https%3A%2F%2Fmirror.example%2Fx",
        torrent.info_hash().to_hex()
    );
    let resolved = Magnet::parse(&link)
        .unwrap()
        .resolve(torrent.clone())
        .unwrap();
    assert_eq!(resolved.info_hash(), torrent.info_hash());
    assert_eq!(
        resolved.trackers(),
        ["wss://a.example/announce", "wss://b.example/announce"]
    );
    assert_eq!(
        resolved.web_seeds(),
        ["https://media.example/x", "https://mirror.example/x"]
    );
    // It survives being written out and read back.
    let again = Metainfo::from_bytes(&resolved.to_bytes()).unwrap();
    assert_eq!(again, resolved);

    let other = Magnet::new(hash());
    assert_eq!(
        other.resolve(torrent.clone()),
        Err(MagnetError::WrongTorrent {
            expected: hash(),
            got: torrent.info_hash()
        })
    );
}

fn unique(list: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for item in list {
        push_new(&mut out, item);
    }
    out
}

proptest! {
    #[test]
    fn whatever_is_written_reads_back(
        bytes in any::<[u8; 20]>(),
        name in proptest::option::of(".{0,40}"),
        length in proptest::option::of(any::<u64>()),
        trackers in proptest::collection::vec(".{0,30}", 0..4),
        web_seeds in proptest::collection::vec(".{0,30}", 0..3),
        sources in proptest::collection::vec(".{0,30}", 0..3),
    ) {
        let magnet = Magnet {
            info_hash: InfoHash::new(bytes),
            name,
            trackers: unique(trackers),
            web_seeds: unique(web_seeds),
            sources: unique(sources),
            acceptable_sources: Vec::new(),
            length,
        };
        prop_assert_eq!(Magnet::parse(&magnet.to_string()), Ok(magnet));
    }

    #[test]
    fn any_text_is_a_link_or_an_error(text in "magnet:\\?.{0,200}") {
        let _ = Magnet::parse(&text);
    }
}
