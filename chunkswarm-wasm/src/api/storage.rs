//! Where each torrent's pieces go: choosing the store when a torrent is
//! added, reading from it, and the storage management calls of `Client`.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use chunkswarm_core::driver::PieceStore;
use chunkswarm_core::metainfo::{Info, Metainfo};
use futures::channel::mpsc;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::store::opfs::{OpfsStore, StoreNotice};
use crate::store::{HeldPieces, PieceBuffer, ReadError};
use crate::web::opfs::{OpfsWorker, WorkerError, field, request};

/// The `storage` option: where pieces go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StorageMode {
    /// OPFS where the browser has it, memory otherwise.
    #[default]
    Auto,
    /// OPFS or nothing: adding a torrent fails where it is missing.
    Opfs,
    /// Memory only.
    Memory,
}

impl StorageMode {
    pub(crate) fn parse(name: Option<&str>) -> Result<Self, JsError> {
        match name {
            None | Some("auto") => Ok(Self::Auto),
            Some("opfs") => Ok(Self::Opfs),
            Some("memory") => Ok(Self::Memory),
            Some(other) => Err(JsError::new(&format!(
                "option `storage` must be 'auto', 'opfs' or 'memory', got {other:?}"
            ))),
        }
    }
}

/// A torrent's store.
#[derive(Debug, Clone)]
pub(crate) enum Storage {
    Memory(Arc<PieceBuffer>),
    Opfs(Arc<OpfsStore>),
}

/// The client's OPFS worker: started on first use; `Err` says why it cannot be.
pub(crate) type WorkerSlot = RefCell<Option<Result<Rc<OpfsWorker>, String>>>;

/// The worker of `slot`, started if it was not.
pub(crate) fn worker(slot: &WorkerSlot) -> Result<Rc<OpfsWorker>, String> {
    slot.borrow_mut()
        .get_or_insert_with(OpfsWorker::start)
        .clone()
}

/// A store just opened, and what to tell about it.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) storage: Storage,
    /// `ready` or `full`.
    pub(crate) state: &'static str,
    pub(crate) reason: Option<String>,
}

fn memory(info: &Info, reason: String) -> Opened {
    Opened {
        storage: Storage::Memory(Arc::new(PieceBuffer::new(info.layout()))),
        state: "ready",
        reason: Some(reason),
    }
}

/// Opens the store for a torrent as `mode` asks, falling back to memory in
/// `Auto` mode (with the reason) where OPFS is missing or the torrent is
/// open in another tab.
pub(crate) async fn open(
    mode: StorageMode,
    slot: &WorkerSlot,
    info: &Info,
    torrent: &[u8],
    notices: mpsc::UnboundedSender<StoreNotice>,
) -> Result<Opened, JsValue> {
    let refuse = |why: String| -> JsValue { JsError::new(&format!("storage: {why}")).into() };
    if mode == StorageMode::Memory {
        return Ok(memory(info, "the `storage: 'memory'` option".into()));
    }
    let worker = match worker(slot) {
        Ok(worker) => worker,
        Err(why) if mode == StorageMode::Auto => return Ok(memory(info, why)),
        Err(why) => return Err(refuse(why)),
    };
    match OpfsStore::open(worker, info, torrent, notices).await {
        Ok(store) => {
            // Single-threaded wasm32: the driver's `Arc`s never cross threads.
            #[allow(clippy::arc_with_non_send_sync)]
            let store = Arc::new(store);
            let failure = store.failure();
            Ok(Opened {
                state: if failure.is_some() { "full" } else { "ready" },
                reason: failure.map(|e| format!("the storage quota cannot hold the file: {e}")),
                storage: Storage::Opfs(store),
            })
        }
        Err(e) => {
            let why = if e.is_locked() {
                "another tab has this torrent open".to_owned()
            } else {
                format!("OPFS refused: {e}")
            };
            if mode == StorageMode::Auto {
                Ok(memory(info, why))
            } else {
                Err(refuse(why))
            }
        }
    }
}

impl Storage {
    /// `opfs` or `memory`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Opfs(_) => "opfs",
        }
    }

    /// The store the driver writes.
    pub(crate) fn piece_store(&self) -> Arc<dyn PieceStore> {
        match self {
            Self::Memory(buffer) => buffer.clone(),
            Self::Opfs(store) => store.clone(),
        }
    }

    pub(crate) fn held(&self) -> &HeldPieces {
        match self {
            Self::Memory(buffer) => buffer.held(),
            Self::Opfs(store) => store.held(),
        }
    }

    /// Resolves with bytes `range` (clamped) once they are verified.
    pub(crate) async fn read(&self, range: Range<u64>) -> Result<js_sys::Uint8Array, ReadError> {
        match self {
            Self::Memory(buffer) => {
                let bytes = buffer.wait_range(range).await?;
                Ok(js_sys::Uint8Array::from(&bytes[..]))
            }
            Self::Opfs(store) => store.read_range(range).await,
        }
    }

    /// The whole content as a `File` once complete: disk-backed on OPFS,
    /// built from the pieces in memory otherwise.
    pub(crate) async fn file(
        &self,
        name: &str,
        kind: Option<&str>,
    ) -> Result<web_sys::File, JsValue> {
        let failed = |e: ReadError| -> JsValue { JsError::new(&e.to_string()).into() };
        let parts = js_sys::Array::new();
        match self {
            Self::Memory(buffer) => {
                for piece in buffer.wait_all().await.map_err(failed)? {
                    parts.push(&js_sys::Uint8Array::from(&piece[..]));
                }
            }
            // A File made of a File refers to the same disk bytes.
            Self::Opfs(store) => {
                let file = store.file().await.map_err(failed)?;
                parts.push(&file);
            }
        }
        let options = web_sys::FilePropertyBag::new();
        if let Some(kind) = kind {
            options.set_type(kind);
        }
        web_sys::File::new_with_blob_sequence_and_options(&parts, name, &options)
    }

    /// Fails pending reads and releases the storage (OPFS keeps the pieces
    /// for next time).
    pub(crate) async fn close(&self) {
        match self {
            Self::Memory(buffer) => buffer.close(),
            Self::Opfs(store) => store.close().await,
        }
    }
}

/// One stored torrent (`StoredTorrent` in TypeScript).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredTorrent {
    info_hash: String,
    name: Option<String>,
    length: Option<f64>,
    piece_count: Option<u32>,
    stored_pieces: u32,
    stored_bytes: f64,
    disk_bytes: f64,
    open_here: bool,
}

/// What `client.storage()` resolves with (`StorageInfo` in TypeScript).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StorageInfo {
    available: bool,
    reason: Option<String>,
    quota: Option<f64>,
    usage: Option<f64>,
    torrents: Vec<StoredTorrent>,
}

impl StorageInfo {
    fn unavailable(reason: String) -> Self {
        Self {
            available: false,
            reason: Some(reason),
            quota: None,
            usage: None,
            torrents: Vec::new(),
        }
    }
}

/// The torrents stored on OPFS with their sizes, and the origin's quota and usage.
pub(crate) async fn list(slot: &WorkerSlot) -> Result<StorageInfo, WorkerError> {
    let worker = match worker(slot) {
        Ok(worker) => worker,
        Err(why) => return Ok(StorageInfo::unavailable(why)),
    };
    let reply = worker.call("list", &request(&[]), &[]).await?;
    let number = |key: &str| field(&reply, key).as_f64();
    let mut torrents = Vec::new();
    for entry in js_sys::Array::from(&field(&reply, "torrents")).iter() {
        let entry: js_sys::Object = entry.unchecked_into();
        let Some(dir) = field(&entry, "dir").as_string() else {
            continue;
        };
        let bytes = js_sys::Uint8Array::new(&field(&entry, "torrent")).to_vec();
        let info = Metainfo::from_bytes(&bytes).ok().map(|m| m.info().clone());
        let stored_pieces = field(&entry, "marked").as_f64().unwrap_or(0.0) as u32;
        let layout = info.as_ref().map(Info::layout);
        torrents.push(StoredTorrent {
            info_hash: dir,
            name: info.as_ref().map(|i| i.name().to_owned()),
            length: layout.map(|l| l.total_length() as f64),
            piece_count: layout.map(|l| l.piece_count()),
            stored_pieces,
            // Every stored piece but the last is full length.
            stored_bytes: layout.map_or(0.0, |l| {
                (u64::from(stored_pieces) * u64::from(l.piece_length())).min(l.total_length())
                    as f64
            }),
            disk_bytes: field(&entry, "size").as_f64().unwrap_or(0.0),
            open_here: field(&entry, "open").as_bool().unwrap_or(false),
        });
    }
    Ok(StorageInfo {
        available: true,
        reason: None,
        quota: number("quota"),
        usage: number("usage"),
        torrents,
    })
}

/// Deletes a stored torrent's pieces and resume state.
pub(crate) async fn remove(slot: &WorkerSlot, info_hash_hex: &str) -> Result<(), String> {
    let worker = worker(slot)?;
    worker
        .call(
            "remove",
            &request(&[("dir", JsValue::from_str(info_hash_hex))]),
            &[],
        )
        .await
        .map_err(|e| {
            if e.is_locked() {
                "another tab has this torrent open".to_owned()
            } else if e.name == "NotFoundError" {
                "no such stored torrent".to_owned()
            } else {
                e.to_string()
            }
        })
        .map(drop)
}
