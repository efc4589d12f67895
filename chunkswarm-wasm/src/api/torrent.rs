//! The `Torrent` class: one torrent of a client, its bytes and its controls.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use chunkswarm_core::driver::Handle;
use chunkswarm_core::metainfo::{Info, InfoHash};
use chunkswarm_core::swarm::{Event, Playback};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::options::count;
use super::to_js;
use crate::model::{PIECE_VERIFIED_PEER, PeerView, StatsView, piece_code};
use crate::store::PieceBuffer;

/// What the client and its `Torrent` objects share about one torrent.
#[derive(Debug)]
pub(crate) struct TorrentShared {
    pub(crate) info_hash: InfoHash,
    pub(crate) info: Info,
    pub(crate) buffer: Arc<PieceBuffer>,
    states: RefCell<Vec<u8>>,
    pub(crate) listeners: RefCell<Vec<js_sys::Function>>,
    done: Cell<bool>,
}

impl TorrentShared {
    pub(crate) fn new(info: Info) -> Self {
        let layout = info.layout();
        Self {
            info_hash: info.info_hash(),
            buffer: Arc::new(PieceBuffer::new(layout)),
            states: RefCell::new(vec![0; layout.piece_count() as usize]),
            listeners: RefCell::new(Vec::new()),
            done: Cell::new(false),
            info,
        }
    }

    /// Pieces held when the torrent started (counted as from peers).
    pub(crate) fn mark_held(&self, pieces: impl Iterator<Item = u32>) {
        let mut states = self.states.borrow_mut();
        for piece in pieces {
            if let Some(slot) = states.get_mut(piece as usize) {
                *slot = PIECE_VERIFIED_PEER;
            }
        }
    }

    /// Follows an engine event of this torrent.
    pub(crate) fn apply(&self, event: &Event) {
        match event {
            Event::Piece { piece, state } => {
                if let Some(slot) = self.states.borrow_mut().get_mut(piece.as_usize()) {
                    *slot = piece_code(*state);
                }
            }
            Event::Completed => self.done.set(true),
            _ => {}
        }
    }
}

/// One torrent of a `Client` (see the crate docs for the contract).
#[wasm_bindgen]
#[derive(Debug)]
pub struct Torrent {
    pub(crate) shared: std::rc::Rc<TorrentShared>,
    pub(crate) handle: Handle,
    /// The client's torrents, to leave on `remove`.
    pub(crate) registry: std::rc::Weak<RefCell<super::client::Torrents>>,
}

fn closed(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

#[wasm_bindgen]
impl Torrent {
    /// The info hash, 40 lowercase hex digits.
    #[wasm_bindgen(getter, js_name = infoHash)]
    pub fn info_hash(&self) -> String {
        self.shared.info_hash.to_hex()
    }

    /// The torrent's name (its file name for a single-file torrent).
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.shared.info.name().to_owned()
    }

    /// Content length in bytes.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.shared.info.total_length() as f64
    }

    /// Bytes per piece (the last piece may be shorter).
    #[wasm_bindgen(getter, js_name = pieceLength)]
    pub fn piece_length(&self) -> u32 {
        self.shared.info.layout().piece_length()
    }

    /// Number of pieces.
    #[wasm_bindgen(getter, js_name = pieceCount)]
    pub fn piece_count(&self) -> u32 {
        self.shared.info.layout().piece_count()
    }

    /// Every piece is verified.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> bool {
        self.shared.done.get()
    }

    /// Calls `listener` with every event of this torrent from now on.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ClientEvent) => void")]
        listener: js_sys::Function,
    ) {
        self.shared.listeners.borrow_mut().push(listener);
    }

    /// Counters and rates now.
    #[wasm_bindgen(unchecked_return_type = "Promise<Stats>")]
    pub fn stats(&self) -> js_sys::Promise {
        let handle = self.handle.clone();
        let info_hash = self.shared.info_hash;
        future_to_promise(async move {
            let stats = handle.stats(info_hash).await.map_err(closed)?;
            let stats = stats.ok_or_else(|| closed("the torrent is not running"))?;
            Ok(to_js(&StatsView::from(&stats)))
        })
    }

    /// The connections as a peer list shows them.
    #[wasm_bindgen(unchecked_return_type = "Promise<PeerInfo[]>")]
    pub fn peers(&self) -> js_sys::Promise {
        let handle = self.handle.clone();
        let info_hash = self.shared.info_hash;
        future_to_promise(async move {
            let peers = handle.peers(info_hash).await.map_err(closed)?;
            let peers = peers.ok_or_else(|| closed("the torrent is not running"))?;
            let rows: Vec<PeerView> = peers.iter().map(PeerView::from).collect();
            Ok(to_js(&rows))
        })
    }

    /// One byte per piece: 0 missing, 1 requested from a peer, 2 requested
    /// over HTTP, 3 verified from peers, 4 verified from HTTP.
    #[wasm_bindgen(js_name = pieceStates)]
    pub fn piece_states(&self) -> js_sys::Uint8Array {
        js_sys::Uint8Array::from(self.shared.states.borrow().as_slice())
    }

    /// Moves the streaming window to `position` (a byte offset) for content
    /// played at `bitrate` bytes per second; call it on every seek.
    #[wasm_bindgen(js_name = setPlayback)]
    pub fn set_playback(&self, position: f64, bitrate: f64) -> Result<(), JsError> {
        let position = count(position.floor(), "position")?
            .min(self.shared.info.total_length().saturating_sub(1));
        let bitrate = count(bitrate.round(), "bitrate")?;
        self.handle
            .set_playback(self.shared.info_hash, Some(Playback { position, bitrate }))
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Stops streaming: pieces are fetched in the torrent's normal order.
    #[wasm_bindgen(js_name = clearPlayback)]
    pub fn clear_playback(&self) -> Result<(), JsError> {
        self.handle
            .set_playback(self.shared.info_hash, None)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Stops the torrent: announces `stopped`, closes its connections and
    /// drops its pieces; pending `read`s and `blob`s reject. The client may
    /// add it again afterwards. Resolves with whether it was running.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn remove(&self) -> js_sys::Promise {
        let shared = self.shared.clone();
        let handle = self.handle.clone();
        let registry = self.registry.clone();
        future_to_promise(async move {
            let removed = handle
                .remove_torrent(shared.info_hash)
                .await
                .map_err(closed)?;
            if let Some(registry) = registry.upgrade() {
                registry.borrow_mut().remove(&shared.info_hash);
            }
            shared.buffer.close();
            Ok(JsValue::from_bool(removed))
        })
    }

    /// Stops requesting data (uploads go on).
    pub fn pause(&self) -> Result<(), JsError> {
        self.handle
            .pause(self.shared.info_hash, true)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Resumes requesting data.
    pub fn resume(&self) -> Result<(), JsError> {
        self.handle
            .pause(self.shared.info_hash, false)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Resolves with bytes `[start, end)` once they are verified; `end` is
    /// clamped to the length. Rejects on a bad range or when the client is
    /// destroyed first.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn read(&self, start: f64, end: f64) -> js_sys::Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let start = count(start, "start")?;
            let end = if end.is_infinite() && end > 0.0 {
                u64::MAX
            } else {
                count(end, "end")?
            };
            let range = shared.buffer.clamp(start, end).map_err(closed)?;
            let bytes = shared.buffer.wait_range(range).await.map_err(closed)?;
            Ok(js_sys::Uint8Array::from(&bytes[..]).into())
        })
    }

    /// Resolves with the whole file as a `Blob` once every piece is verified.
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob>")]
    pub fn blob(&self, r#type: Option<String>) -> js_sys::Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let pieces = shared.buffer.wait_all().await.map_err(closed)?;
            let parts = js_sys::Array::new();
            for piece in &pieces {
                parts.push(&js_sys::Uint8Array::from(&piece[..]));
            }
            let options = web_sys::BlobPropertyBag::new();
            if let Some(kind) = &r#type {
                options.set_type(kind);
            }
            let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)?;
            Ok(blob.into())
        })
    }
}
