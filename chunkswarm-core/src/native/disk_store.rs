//! A piece store in one file on disk, resumable.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use crate::driver::{PieceStore, StoreError};
use crate::layout::{Layout, PieceIndex};
use crate::metainfo::Info;
use crate::piece_map::Bitfield;

/// The content of a torrent in one file (a multi-file torrent's files
/// concatenated in order), written piece by piece as they are verified.
///
/// [`verified`](PieceStore::verified) re-hashes every piece the file holds,
/// so after a restart the download resumes with what was already written and
/// a piece torn by a crash is fetched again. Seeding an existing file is the
/// same call: every piece verifies.
#[derive(Debug, Clone)]
pub struct DiskStore {
    path: PathBuf,
    layout: Layout,
    file: Arc<Mutex<File>>,
}

impl DiskStore {
    /// Opens (creating if needed) the file at `path` for the torrent `info`.
    /// An existing file is kept as it is.
    pub fn open(path: impl Into<PathBuf>, info: &Info) -> Result<Self, StoreError> {
        let path = path.into();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(&path, &e))?;
        Ok(Self {
            path,
            layout: info.layout(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Where the content is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` on the file on tokio's blocking pool.
    async fn with_file<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut File) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let file = self.file.clone();
        let path = self.path.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            op(&mut file)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(|e| io_error(&path, &e)),
            Err(e) => Err(StoreError::Io(format!("store task failed: {e}"))),
        }
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

#[async_trait]
impl PieceStore for DiskStore {
    async fn verified(&self, info: &Info) -> Result<Bitfield, StoreError> {
        let info = info.clone();
        self.with_file(move |file| {
            let layout = info.layout();
            let file_len = file.metadata()?.len();
            let mut have = Bitfield::new(layout.piece_count());
            let mut buffer = vec![0u8; layout.piece_length() as usize];
            for piece in layout.pieces() {
                let range = layout.piece_range(piece);
                if range.end > file_len {
                    break;
                }
                let data = &mut buffer[..layout.piece_len(piece) as usize];
                file.seek(SeekFrom::Start(range.start))?;
                file.read_exact(data)?;
                if info.verify_piece(piece, data) {
                    have.insert(piece);
                }
            }
            Ok(have)
        })
        .await
    }

    async fn read(&self, piece: PieceIndex) -> Result<Bytes, StoreError> {
        if piece.get() >= self.layout.piece_count() {
            return Err(StoreError::OutOfRange(piece.get()));
        }
        let range = self.layout.piece_range(piece);
        let len = self.layout.piece_len(piece) as usize;
        let read = self
            .with_file(move |file| {
                if file.metadata()?.len() < range.end {
                    return Ok(None);
                }
                let mut data = vec![0u8; len];
                file.seek(SeekFrom::Start(range.start))?;
                file.read_exact(&mut data)?;
                Ok(Some(Bytes::from(data)))
            })
            .await?;
        read.ok_or(StoreError::Missing(piece.get()))
    }

    async fn write(&self, piece: PieceIndex, data: Bytes) -> Result<(), StoreError> {
        if piece.get() >= self.layout.piece_count()
            || data.len() != self.layout.piece_len(piece) as usize
        {
            return Err(StoreError::OutOfRange(piece.get()));
        }
        let start = self.layout.piece_offset(piece);
        self.with_file(move |file| {
            file.seek(SeekFrom::Start(start))?;
            file.write_all(&data)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::TorrentBuilder;

    fn torrent(len: usize) -> (Info, Vec<u8>) {
        let content: Vec<u8> = (0..len).map(|i| (i * 17 % 249) as u8).collect();
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .build_from_reader("x.bin", content.as_slice())
            .unwrap();
        (meta.info().clone(), content)
    }

    #[tokio::test]
    async fn a_restart_resumes_with_the_pieces_written() {
        let (info, content) = torrent(70_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let layout = info.layout();
        let piece = |i| layout.piece(i).unwrap();
        let slice = |i: u32| {
            let r = layout.piece_range(piece(i));
            Bytes::copy_from_slice(&content[r.start as usize..r.end as usize])
        };
        {
            let store = DiskStore::open(&path, &info).unwrap();
            assert!(store.verified(&info).await.unwrap().is_clear());
            store.write(piece(1), slice(1)).await.unwrap();
            store.write(piece(4), slice(4)).await.unwrap();
            // A torn write: half of piece 2 is garbage.
            let mut torn = slice(2).to_vec();
            torn[100] ^= 0xff;
            store.write(piece(2), Bytes::from(torn)).await.unwrap();
        }
        let store = DiskStore::open(&path, &info).unwrap();
        let have = store.verified(&info).await.unwrap();
        let held: Vec<u32> = have.iter_ones().map(PieceIndex::get).collect();
        assert_eq!(held, vec![1, 4]);
        assert_eq!(store.read(piece(4)).await.unwrap(), slice(4));
        assert!(
            store
                .write(piece(0), Bytes::from_static(b"short"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn an_existing_file_seeds_whole_and_a_missing_tail_reads_as_missing() {
        let (info, content) = torrent(50_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.bin");
        std::fs::write(&path, &content).unwrap();
        let store = DiskStore::open(&path, &info).unwrap();
        assert!(store.verified(&info).await.unwrap().is_full());

        let empty = DiskStore::open(dir.path().join("new.bin"), &info).unwrap();
        let last = info.layout().last_piece();
        assert!(matches!(
            empty.read(last).await,
            Err(StoreError::Missing(_))
        ));
    }
}
