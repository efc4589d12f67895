//! A whole swarm in one page: two drivers on the real WebRTC connector,
//! introduced by an in-page stand-in for the tracker (it relays offers and
//! answers as the WebTorrent tracker does). The leecher has no web seed, so
//! every byte crosses the data channels; the result must be byte-exact.
//!
//! Run by `tests/run-browser-tests.sh` (a network namespace, Chromium flags).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chunkswarm_core::driver::signal::{Id20, SignalIn, SignalOut};
use chunkswarm_core::driver::{
    DriverConfig, DriverIo, MemoryStore, Signaling, SignalingError, SignalingLink, Sleeper,
    TorrentSpec, driver,
};
use chunkswarm_core::metainfo::TorrentBuilder;
use chunkswarm_core::swarm::{Event, SwarmConfig};
use chunkswarm_wasm::store::PieceBuffer;
use chunkswarm_wasm::web::rtc::{RtcSettings, WebRtcConnector};
use chunkswarm_wasm::web::sleep::TimeoutSleeper;
use futures::StreamExt as _;
use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either};
use wasm_bindgen_futures::spawn_local;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The tracker's relaying, in memory: each announce's first offer goes to
/// every other peer (one peer here, as the tracker gives one offer per peer),
/// each answer to the peer it names.
#[derive(Debug, Default)]
struct Hub {
    peers: RefCell<BTreeMap<Id20, mpsc::UnboundedSender<SignalIn>>>,
}

#[derive(Debug)]
struct HubLink {
    me: Id20,
    hub: std::rc::Rc<Hub>,
}

impl Signaling for HubLink {
    fn send(&self, message: SignalOut) -> Result<(), SignalingError> {
        let peers = self.hub.peers.borrow();
        match message {
            SignalOut::Announce(announce) => {
                let others = peers.iter().filter(|(id, _)| **id != self.me);
                for ((_, peer), (offer_id, sdp)) in others.zip(announce.offers) {
                    let _ = peer.unbounded_send(SignalIn::Offer {
                        info_hash: announce.info_hash,
                        from: self.me,
                        offer_id,
                        sdp,
                    });
                }
                if let Some(me) = peers.get(&self.me) {
                    let _ = me.unbounded_send(SignalIn::Announced {
                        info_hash: announce.info_hash,
                        interval: Some(Duration::from_secs(2)),
                        complete: None,
                        incomplete: None,
                        ice: None,
                        facts: None,
                    });
                }
            }
            SignalOut::Answer {
                info_hash,
                to_peer_id,
                offer_id,
                sdp,
                ..
            } => {
                if let Some(peer) = peers.get(&to_peer_id) {
                    let _ = peer.unbounded_send(SignalIn::Answer {
                        info_hash,
                        from: self.me,
                        offer_id,
                        sdp,
                    });
                }
            }
            SignalOut::Have { .. } => {}
        }
        Ok(())
    }
}

fn join(hub: &std::rc::Rc<Hub>, me: Id20) -> SignalingLink {
    let (sender, events) = mpsc::unbounded();
    hub.peers.borrow_mut().insert(me, sender);
    #[allow(clippy::arc_with_non_send_sync)]
    let sender = Arc::new(HubLink {
        me,
        hub: hub.clone(),
    });
    SignalingLink {
        sender,
        events: Box::pin(events),
    }
}

#[allow(clippy::arc_with_non_send_sync)]
fn io(hub: &std::rc::Rc<Hub>, me: Id20) -> DriverIo {
    DriverIo {
        signaling: Some(join(hub, me)),
        connector: Some(Arc::new(WebRtcConnector::new(RtcSettings::default(), None))),
        sleeper: Arc::new(TimeoutSleeper),
    }
}

fn spawn(running: chunkswarm_core::driver::BoxFuture<'static, ()>) -> oneshot::Receiver<()> {
    let (done, stopped) = oneshot::channel();
    spawn_local(async move {
        running.await;
        let _ = done.send(());
    });
    stopped
}

#[wasm_bindgen_test]
async fn a_leecher_downloads_a_torrent_from_a_seeder_byte_exact() {
    let content: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let meta = TorrentBuilder::new()
        .piece_length(256 << 10)
        .build_from_reader("film.bin", content.as_slice())
        .unwrap();
    let info = meta.info().clone();
    let content = Bytes::from(content);

    let hub = std::rc::Rc::new(Hub::default());
    let seeder_config = DriverConfig::seeded(1);
    let leecher_config = DriverConfig::seeded(2);
    let (seeder_id, leecher_id) = (seeder_config.peer_id, leecher_config.peer_id);
    let (seeder, seeder_run) = driver(seeder_config, io(&hub, seeder_id));
    let (leecher, leecher_run) = driver(leecher_config, io(&hub, leecher_id));
    let seeder_stopped = spawn(seeder_run);
    let leecher_stopped = spawn(leecher_run);
    let mut events = leecher.events();

    seeder
        .add_torrent(TorrentSpec {
            info: info.clone(),
            store: Arc::new(MemoryStore::with_content(&info, &content)),
            origin: None,
            config: SwarmConfig::default(),
        })
        .await
        .unwrap();
    let buffer = Arc::new(PieceBuffer::new(info.layout()));
    let held = leecher
        .add_torrent(TorrentSpec {
            info: info.clone(),
            store: buffer.clone(),
            origin: None,
            config: SwarmConfig::default(),
        })
        .await
        .unwrap();
    assert_eq!(held.count_ones(), 0);

    let completed = async {
        let mut connected = false;
        while let Some(event) = events.next().await {
            match event.event {
                Event::PeerConnected { peer_id, .. } => {
                    assert_eq!(peer_id, seeder_id);
                    connected = true;
                }
                Event::Completed => return connected,
                _ => {}
            }
        }
        panic!("the driver stopped before the download completed");
    };
    let deadline = TimeoutSleeper.sleep(Duration::from_secs(90));
    let connected = match future::select(Box::pin(completed), deadline).await {
        Either::Left((connected, _)) => connected,
        Either::Right(_) => panic!("no complete download within 90 s"),
    };
    assert!(connected, "a peer-connected event came before completion");

    let stats = leecher.stats(info.info_hash()).await.unwrap().unwrap();
    assert_eq!(
        stats.p2p_bytes,
        content.len() as u64,
        "every byte from the peer"
    );
    assert_eq!(stats.http_bytes, 0);
    let seeder_stats = seeder.stats(info.info_hash()).await.unwrap().unwrap();
    assert!(seeder_stats.uploaded_bytes >= content.len() as u64);

    leecher.shutdown();
    seeder.shutdown();
    leecher_stopped.await.unwrap();
    seeder_stopped.await.unwrap();
    // Shutdown finished every write: the store holds the whole file.
    let pieces = buffer.all_pieces().expect("every piece stored");
    assert!(pieces.concat() == content[..], "byte-exact");
}
