//! The OPFS store: a torrent's verified pieces in one file of the Origin
//! Private File System, written and read by the [OPFS worker](crate::web::opfs).
//!
//! The page keeps no piece: a write copies the piece into a buffer that
//! moves to the worker, and reads come back the same way. Reads for
//! JavaScript (`torrent.read`, the streaming Service Worker) go straight
//! from the worker to JS without passing through wasm memory.
//!
//! A piece the disk refuses (quota or disk full, or any write error) is not
//! lost: it stays in memory, readable and served, the store reports the
//! failure (`StoreNotice`) so the client pauses the torrent, and
//! `OpfsStore::retry` (the torrent's `resume()`) writes the kept pieces once there is room again.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;

use async_trait::async_trait;
use bytes::Bytes;
use chunkswarm_core::driver::{PieceStore, StoreError};
use chunkswarm_core::layout::PieceIndex;
use chunkswarm_core::metainfo::{Info, InfoHash};
use chunkswarm_core::piece_map::Bitfield;
use futures::channel::mpsc;
use wasm_bindgen::prelude::*;

use super::held::{HeldPieces, ReadError};
use crate::web::opfs::{OpfsWorker, WorkerError, field, request};

/// The storage of a torrent failed; the client pauses it.
#[derive(Debug, Clone)]
pub(crate) struct StoreNotice {
    pub(crate) info_hash: InfoHash,
    pub(crate) error: WorkerError,
}

/// Piece-sized buffers lent to the worker and handed back: without them
/// every piece written or read would leave a MiB of garbage in the page
/// and in the worker, which their collectors let grow to hundreds of MiB.
struct BufferPool {
    size: u32,
    free: RefCell<Vec<js_sys::ArrayBuffer>>,
}

impl BufferPool {
    /// Buffers kept for reuse; more in flight at once are made and dropped.
    const KEEP: usize = 8;

    fn take(&self) -> js_sys::ArrayBuffer {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| js_sys::ArrayBuffer::new(self.size))
    }

    fn give(&self, buffer: JsValue) {
        if let Ok(buffer) = buffer.dyn_into::<js_sys::ArrayBuffer>() {
            let mut free = self.free.borrow_mut();
            if buffer.byte_length() == self.size && free.len() < Self::KEEP {
                free.push(buffer);
            }
        }
    }
}

/// A torrent's pieces on OPFS.
pub struct OpfsStore {
    worker: Rc<OpfsWorker>,
    info_hash: InfoHash,
    dir: String,
    held: HeldPieces,
    /// Pieces verified at open.
    resumed: Bitfield,
    /// Verified pieces the disk refused, kept until [`retry`](Self::retry).
    unwritten: RefCell<BTreeMap<u32, Bytes>>,
    /// Why writes stopped, until a retry succeeds.
    failure: RefCell<Option<WorkerError>>,
    notices: mpsc::UnboundedSender<StoreNotice>,
    buffers: BufferPool,
}

impl std::fmt::Debug for OpfsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpfsStore")
            .field("dir", &self.dir)
            .field("unwritten", &self.unwritten.borrow().len())
            .field("failure", &self.failure.borrow())
            .finish_non_exhaustive()
    }
}

fn store_error(e: WorkerError) -> StoreError {
    StoreError::io(std::io::Error::other(e.to_string()))
}

impl OpfsStore {
    /// Opens (or creates) the torrent's files, reserving its full length,
    /// and re-hashes every piece stored before: those that match are held
    /// at once. `torrent` is the `.torrent`, kept for the storage listing.
    ///
    /// Fails when another tab has the torrent open (`is_locked`) or OPFS
    /// refuses; a quota too small to reserve the file is not a failure:
    /// the store opens with writes stopped ([`failure`](Self::failure)).
    pub(crate) async fn open(
        worker: Rc<OpfsWorker>,
        info: &Info,
        torrent: &[u8],
        notices: mpsc::UnboundedSender<StoreNotice>,
    ) -> Result<Self, WorkerError> {
        let layout = info.layout();
        let info_hash = info.info_hash();
        let dir = info_hash.to_hex();
        let hashes = js_sys::Uint8Array::new_with_length(layout.piece_count() * 20);
        for piece in layout.pieces() {
            if let Some(hash) = info.piece_hash(piece) {
                hashes
                    .subarray(piece.get() * 20, piece.get() * 20 + 20)
                    .copy_from(&hash.0);
            }
        }
        let reply = worker
            .call(
                "open",
                &request(&[
                    ("dir", JsValue::from_str(&dir)),
                    ("length", JsValue::from_f64(layout.total_length() as f64)),
                    ("pieceLength", JsValue::from(layout.piece_length())),
                    ("hashes", hashes.clone().into()),
                    ("torrent", js_sys::Uint8Array::from(torrent).into()),
                ]),
                &[hashes.buffer().into()],
            )
            .await?;
        let marks = js_sys::Uint8Array::new(&field(&reply, "have")).to_vec();
        let held = HeldPieces::new(layout);
        let mut resumed = Bitfield::new(layout.piece_count());
        for piece in layout.pieces() {
            if marks.get(piece.as_usize()) == Some(&1) {
                resumed.insert(piece);
                held.insert(piece);
            }
        }
        let quota = field(&reply, "quota");
        let failure = (!quota.is_null() && !quota.is_undefined()).then(|| WorkerError {
            name: "QuotaExceededError".into(),
            message: field(&quota.unchecked_into(), "message")
                .as_string()
                .unwrap_or_default(),
        });
        Ok(Self {
            worker,
            info_hash,
            dir,
            held,
            resumed,
            unwritten: RefCell::new(BTreeMap::new()),
            failure: RefCell::new(failure),
            notices,
            buffers: BufferPool {
                size: layout.piece_length(),
                free: RefCell::new(Vec::new()),
            },
        })
    }

    /// Which pieces are held, and the readers waiting on them.
    pub fn held(&self) -> &HeldPieces {
        &self.held
    }

    /// Pieces found stored and re-verified when the store opened.
    pub fn resumed(&self) -> &Bitfield {
        &self.resumed
    }

    /// Why writes are stopped, if they are.
    pub(crate) fn failure(&self) -> Option<WorkerError> {
        self.failure.borrow().clone()
    }

    /// Verified pieces held in memory because the disk refused them.
    pub fn unwritten(&self) -> usize {
        self.unwritten.borrow().len()
    }

    fn dir_request(&self, fields: &[(&str, JsValue)]) -> js_sys::Object {
        let object = request(fields);
        let _ = js_sys::Reflect::set(&object, &"dir".into(), &JsValue::from_str(&self.dir));
        object
    }

    async fn write_to_disk(&self, piece: PieceIndex, data: &[u8]) -> Result<(), WorkerError> {
        let buffer = self.buffers.take();
        js_sys::Uint8Array::new_with_byte_offset_and_length(&buffer, 0, data.len() as u32)
            .copy_from(data);
        let at = self.held.layout().piece_offset(piece);
        let reply = self
            .worker
            .call(
                "write",
                &self.dir_request(&[
                    ("piece", JsValue::from(piece.get())),
                    ("at", JsValue::from_f64(at as f64)),
                    ("data", buffer.clone().into()),
                    ("length", JsValue::from(data.len() as u32)),
                ]),
                &[buffer.into()],
            )
            .await?;
        self.buffers.give(field(&reply, "data"));
        Ok(())
    }

    /// Bytes `range` in a new buffer (handed to JavaScript).
    async fn read_from_disk(&self, range: Range<u64>) -> Result<js_sys::Uint8Array, WorkerError> {
        let reply = self
            .worker
            .call(
                "read",
                &self.dir_request(&[
                    ("at", JsValue::from_f64(range.start as f64)),
                    (
                        "length",
                        JsValue::from_f64((range.end - range.start) as f64),
                    ),
                ]),
                &[],
            )
            .await?;
        Ok(js_sys::Uint8Array::new(&field(&reply, "data")))
    }

    /// One piece, read into a pooled buffer and copied into wasm memory.
    async fn read_piece(&self, piece: PieceIndex) -> Result<Bytes, WorkerError> {
        let layout = self.held.layout();
        let length = layout.piece_len(piece);
        let buffer = self.buffers.take();
        let reply = self
            .worker
            .call(
                "read",
                &self.dir_request(&[
                    ("at", JsValue::from_f64(layout.piece_offset(piece) as f64)),
                    ("length", JsValue::from(length)),
                    ("into", buffer.clone().into()),
                ]),
                &[buffer.into()],
            )
            .await?;
        let data = field(&reply, "data");
        let bytes = js_sys::Uint8Array::new_with_byte_offset_and_length(&data, 0, length).to_vec();
        self.buffers.give(data);
        Ok(Bytes::from(bytes))
    }

    /// Writes the pieces kept in memory (reserving the file first) and
    /// resumes writing; fails with the first error, keeping the rest.
    pub(crate) async fn retry(&self) -> Result<(), WorkerError> {
        self.worker
            .call("reserve", &self.dir_request(&[]), &[])
            .await?;
        loop {
            let next = self
                .unwritten
                .borrow()
                .first_key_value()
                .map(|(k, v)| (*k, v.clone()));
            let Some((index, data)) = next else { break };
            let Some(piece) = self.held.layout().piece(index) else {
                self.unwritten.borrow_mut().remove(&index);
                continue;
            };
            self.write_to_disk(piece, &data).await?;
            self.unwritten.borrow_mut().remove(&index);
        }
        self.failure.replace(None);
        Ok(())
    }

    /// Resolves with bytes `range` (clamped) once every piece under it is
    /// verified, read from the disk (or from memory for pieces it refused).
    pub(crate) async fn read_range(
        &self,
        range: Range<u64>,
    ) -> Result<js_sys::Uint8Array, ReadError> {
        self.held.wait_range(range.clone()).await?;
        if range.is_empty() {
            return Ok(js_sys::Uint8Array::new_with_length(0));
        }
        let storage = |e: WorkerError| ReadError::Storage(e.to_string());
        let pieces = self.held.pieces_under(&range);
        let in_memory = {
            let unwritten = self.unwritten.borrow();
            pieces.iter().any(|p| unwritten.contains_key(&p.get()))
        };
        if !in_memory {
            return self.read_from_disk(range).await.map_err(storage);
        }
        let layout = self.held.layout();
        let out = js_sys::Uint8Array::new_with_length((range.end - range.start) as u32);
        for piece in pieces {
            let span = layout.piece_range(piece);
            let part = span.start.max(range.start)..span.end.min(range.end);
            let at = (part.start - range.start) as u32;
            let kept = self.unwritten.borrow().get(&piece.get()).cloned();
            match kept {
                Some(data) => {
                    let from = (part.start - span.start) as usize;
                    let to = (part.end - span.start) as usize;
                    out.subarray(at, at + (to - from) as u32)
                        .copy_from(&data[from..to]);
                }
                None => {
                    let bytes = self.read_from_disk(part).await.map_err(storage)?;
                    out.set(&bytes, at);
                }
            }
        }
        Ok(out)
    }

    /// The whole content as a disk-backed `File`, once every piece is
    /// verified and written.
    pub(crate) async fn file(&self) -> Result<web_sys::File, ReadError> {
        self.held.wait_all().await?;
        if let Some(e) = self.failure() {
            return Err(ReadError::Storage(format!(
                "{} verified pieces are held in memory because the storage refused them ({e}); free space and resume",
                self.unwritten()
            )));
        }
        let reply = self
            .worker
            .call("file", &self.dir_request(&[]), &[])
            .await
            .map_err(|e| ReadError::Storage(e.to_string()))?;
        field(&reply, "file")
            .dyn_into()
            .map_err(|_| ReadError::Storage("the storage worker sent no file".into()))
    }

    /// Fails pending reads and releases the torrent's files (they stay
    /// stored, for the next time the torrent is added).
    pub(crate) async fn close(&self) {
        self.held.close();
        let _ = self.worker.call("close", &self.dir_request(&[]), &[]).await;
    }
}

#[async_trait(?Send)]
impl PieceStore for OpfsStore {
    async fn verified(&self, _info: &Info) -> Result<Bitfield, StoreError> {
        // Re-hashed when the store opened (`open`).
        Ok(self.held.snapshot())
    }

    async fn read(&self, piece: PieceIndex) -> Result<Bytes, StoreError> {
        if let Some(data) = self.unwritten.borrow().get(&piece.get()) {
            return Ok(data.clone());
        }
        if !self.held.contains(piece) {
            return Err(StoreError::Missing(piece.get()));
        }
        self.read_piece(piece).await.map_err(store_error)
    }

    async fn write(&self, piece: PieceIndex, data: Bytes) -> Result<(), StoreError> {
        let layout = self.held.layout();
        if layout.piece(piece.get()) != Some(piece)
            || data.len() != layout.piece_len(piece) as usize
        {
            return Err(StoreError::OutOfRange(piece.get()));
        }
        if self.failure.borrow().is_none() {
            match self.write_to_disk(piece, &data).await {
                Ok(()) => {
                    self.held.insert(piece);
                    return Ok(());
                }
                Err(error) => {
                    // Report once; later writes queue behind the failure.
                    if self.failure.replace(Some(error.clone())).is_none() {
                        let _ = self.notices.unbounded_send(StoreNotice {
                            info_hash: self.info_hash,
                            error,
                        });
                    }
                }
            }
        }
        // Nothing verified is lost: the piece waits in memory for a retry.
        self.unwritten.borrow_mut().insert(piece.get(), data);
        self.held.insert(piece);
        Ok(())
    }
}
