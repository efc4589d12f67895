//! The `Torrent` class: one torrent of a client, its bytes and its controls.

use std::cell::{Cell, RefCell};

use chunkswarm_core::driver::Handle;
use chunkswarm_core::metainfo::{Info, InfoHash};
use chunkswarm_core::swarm::{Event, Playback};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::options::count;
use super::storage::Storage;
use super::to_js;
use crate::model::{ClientEvent, PIECE_VERIFIED_PEER, PeerView, StatsView, piece_code};

/// What the client and its `Torrent` objects share about one torrent.
#[derive(Debug)]
pub(crate) struct TorrentShared {
    pub(crate) info_hash: InfoHash,
    pub(crate) info: Info,
    pub(crate) storage: Storage,
    states: RefCell<Vec<u8>>,
    pub(crate) listeners: RefCell<Vec<js_sys::Function>>,
    done: Cell<bool>,
}

impl TorrentShared {
    pub(crate) fn new(info: Info, storage: Storage) -> Self {
        let layout = info.layout();
        Self {
            info_hash: info.info_hash(),
            storage,
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

    /// A `storage` event of this torrent.
    pub(crate) fn storage_event(&self, state: &'static str, reason: Option<String>) -> ClientEvent {
        let (resumed_pieces, resumed_bytes) = match &self.storage {
            Storage::Opfs(store) => {
                let layout = self.info.layout();
                let bytes: u64 = store
                    .resumed()
                    .iter_ones()
                    .map(|p| u64::from(layout.piece_len(p)))
                    .sum();
                (store.resumed().count_ones(), bytes as f64)
            }
            Storage::Memory(_) => (0, 0.0),
        };
        ClientEvent::Storage {
            info_hash: self.info_hash.to_hex(),
            store: self.storage.kind(),
            state,
            reason,
            resumed_pieces,
            resumed_bytes,
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
    /// Hands an event to the client's and the torrent's listeners.
    pub(crate) dispatch: super::client::Dispatch,
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
    /// releases its storage (pieces on OPFS stay stored, to resume from
    /// when it is added again; `client.removeStored` deletes them); pending
    /// `read`s and `blob`s reject. Resolves with whether it was running.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn remove(&self) -> js_sys::Promise {
        let shared = self.shared.clone();
        let handle = self.handle.clone();
        let registry = self.registry.clone();
        future_to_promise(async move {
            let removed = stop(&shared, &handle, &registry).await?;
            Ok(JsValue::from_bool(removed))
        })
    }

    /// Where the pieces are kept: `'opfs'` or `'memory'`.
    #[wasm_bindgen(getter)]
    pub fn storage(&self) -> String {
        self.shared.storage.kind().to_owned()
    }

    /// Stops requesting data (uploads go on).
    pub fn pause(&self) -> Result<(), JsError> {
        self.handle
            .pause(self.shared.info_hash, true)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Resumes requesting data. When the storage had stopped (quota or
    /// disk full), writes the pieces kept in memory first; rejects, still
    /// paused, if the storage still refuses them.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn resume(&self) -> js_sys::Promise {
        let shared = self.shared.clone();
        let handle = self.handle.clone();
        let dispatch = self.dispatch.clone();
        future_to_promise(async move {
            if let Storage::Opfs(store) = &shared.storage {
                if store.failure().is_some() {
                    if let Err(e) = store.retry().await {
                        let event = shared.storage_event(
                            if e.is_quota() { "full" } else { "failed" },
                            Some(e.to_string()),
                        );
                        dispatch.send(&shared, &event);
                        return Err(closed(format!("the storage still refuses writes: {e}")));
                    }
                    dispatch.send(&shared, &shared.storage_event("ready", None));
                }
            }
            handle.pause(shared.info_hash, false).map_err(closed)?;
            Ok(JsValue::UNDEFINED)
        })
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
            let range = shared.storage.held().clamp(start, end).map_err(closed)?;
            let bytes = shared.storage.read(range).await.map_err(closed)?;
            Ok(bytes.into())
        })
    }

    /// Resolves with the whole content as a `File` named after the torrent
    /// once every piece is verified. On OPFS the `File` is the stored file
    /// itself, read from disk as it is used, whatever its size.
    #[wasm_bindgen(unchecked_return_type = "Promise<File>")]
    pub fn file(&self, r#type: Option<String>) -> js_sys::Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            let file = shared
                .storage
                .file(shared.info.name(), r#type.as_deref())
                .await?;
            Ok(file.into())
        })
    }

    /// The same as [`file`](Self::file) (a `File` is a `Blob`).
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob>")]
    pub fn blob(&self, r#type: Option<String>) -> js_sys::Promise {
        self.file(r#type)
    }
}

/// Removes a torrent from the driver and the client, and closes its storage.
pub(crate) async fn stop(
    shared: &TorrentShared,
    handle: &Handle,
    registry: &std::rc::Weak<RefCell<super::client::Torrents>>,
) -> Result<bool, JsValue> {
    let removed = handle
        .remove_torrent(shared.info_hash)
        .await
        .map_err(closed)?;
    if let Some(registry) = registry.upgrade() {
        registry.borrow_mut().remove(&shared.info_hash);
    }
    shared.storage.close().await;
    Ok(removed)
}
