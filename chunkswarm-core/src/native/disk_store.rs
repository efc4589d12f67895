//! A piece store on disk: one file, or a multi-file torrent's files in a
//! folder. Resumable.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use crate::driver::{PieceStore, StoreError};
use crate::layout::{Layout, PieceIndex};
use crate::metainfo::Info;
use crate::piece_map::Bitfield;

/// The content of a torrent on disk, written piece by piece as pieces are
/// verified: a single-file torrent in the file at `path`, a multi-file one
/// as its files below the folder `path`, at their paths in the torrent
/// (whose components the metainfo parser has already checked cannot leave
/// the folder). A piece may span several files.
///
/// [`verified`](PieceStore::verified) re-hashes every piece the files hold,
/// so after a restart the download resumes with what was already written and
/// a piece torn by a crash is fetched again. Seeding existing files is the
/// same call: every piece verifies.
///
/// At most [`DEFAULT_MAX_OPEN_FILES`] files are open at once (see
/// [`with_max_open_files`](Self::with_max_open_files)): the least recently
/// used is closed to open another, so a torrent of thousands of files stays
/// within the process's descriptor limit.
#[derive(Debug, Clone)]
pub struct DiskStore {
    path: PathBuf,
    layout: Layout,
    files: Arc<Mutex<Files>>,
}

/// Files a [`DiskStore`] keeps open at once unless told otherwise.
pub const DEFAULT_MAX_OPEN_FILES: usize = 64;

/// The torrent's files in content order, and which of them are open.
#[derive(Debug)]
struct Files {
    segments: Vec<Segment>,
    /// Indices of the segments with an open handle, least recently used first.
    open: VecDeque<usize>,
    max_open: usize,
}

/// One file: where its bytes sit in the content, and its handle while open.
#[derive(Debug)]
struct Segment {
    content: Range<u64>,
    path: PathBuf,
    file: Option<File>,
}

impl DiskStore {
    /// Opens (creating if needed, folders included) the file or files of the
    /// torrent `info` at `path`. Existing files are kept as they are.
    ///
    /// Blocks: it creates folders and files with `std::fs`. In async code
    /// run it in `tokio::task::spawn_blocking` for torrents of many files
    /// ([`Client::add`](crate::client::Client::add) does). Reads and writes
    /// afterwards run on tokio's blocking pool and do not block.
    pub fn open(path: impl Into<PathBuf>, info: &Info) -> Result<Self, StoreError> {
        let path = path.into();
        let mut segments = Vec::with_capacity(info.files().len());
        for entry in info.files() {
            let file_path = if info.is_multi_file() {
                entry.path().iter().fold(path.clone(), |p, c| p.join(c))
            } else {
                path.clone()
            };
            if let Some(parent) = file_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            // Created now, so that the whole layout exists; opened on use.
            open_file(&file_path)?;
            segments.push(Segment {
                content: entry.byte_range(),
                path: file_path,
                file: None,
            });
        }
        let files = Files {
            segments,
            open: VecDeque::new(),
            max_open: DEFAULT_MAX_OPEN_FILES,
        };
        Ok(Self {
            path,
            layout: info.layout(),
            files: Arc::new(Mutex::new(files)),
        })
    }

    /// Keeps at most `max` files open at once (at least one).
    #[must_use]
    pub fn with_max_open_files(self, max: usize) -> Self {
        {
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            files.max_open = max.max(1);
            files.close_beyond(max.max(1));
        }
        self
    }

    /// Where the content is: the file, or the folder of a multi-file torrent.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` on the files on tokio's blocking pool.
    async fn with_files<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Files) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let files = self.files.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
            op(&mut files)
        })
        .await;
        joined.unwrap_or_else(|e| Err(StoreError::io(std::io::Error::other(e))))
    }
}

fn open_file(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::io_at(path, e)
}

/// A part of a content range that lies in one file.
struct Span {
    segment: usize,
    /// Offset in the file.
    in_file: u64,
    /// Offset in the range.
    at: usize,
    len: usize,
}

impl Files {
    /// The parts of `range` (content bytes) in each file, in order.
    fn spans(&self, range: Range<u64>) -> Vec<Span> {
        // Segments are in content order: skip those that end before the range.
        let first = self
            .segments
            .partition_point(|s| s.content.end <= range.start);
        self.segments[first..]
            .iter()
            .enumerate()
            .take_while(|(_, s)| s.content.start < range.end)
            .filter_map(|(i, segment)| {
                let start = range.start.max(segment.content.start);
                let end = range.end.min(segment.content.end);
                (start < end).then(|| Span {
                    segment: first + i,
                    in_file: start - segment.content.start,
                    at: (start - range.start) as usize,
                    len: (end - start) as usize,
                })
            })
            .collect()
    }

    /// The segment's open handle, opening it (and closing the least
    /// recently used one if at the limit) when needed.
    fn file(&mut self, index: usize) -> Result<(&mut File, &Path), StoreError> {
        if let Some(at) = self.open.iter().position(|&i| i == index) {
            self.open.remove(at);
        } else {
            self.close_beyond(self.max_open - 1);
            let segment = &mut self.segments[index];
            segment.file = Some(open_file(&segment.path)?);
        }
        self.open.push_back(index);
        let segment = &mut self.segments[index];
        match segment.file.as_mut() {
            Some(file) => Ok((file, &segment.path)),
            None => Err(io_error(
                &segment.path,
                std::io::Error::other("file handle missing"),
            )),
        }
    }

    /// Closes the least recently used files until at most `keep` are open.
    fn close_beyond(&mut self, keep: usize) {
        while self.open.len() > keep {
            if let Some(i) = self.open.pop_front() {
                self.segments[i].file = None;
            }
        }
    }

    /// Reads `range` of the content; `None` if a file is too short to hold it.
    fn read_range(&mut self, range: Range<u64>) -> Result<Option<Vec<u8>>, StoreError> {
        let mut data = vec![0u8; (range.end - range.start) as usize];
        for span in self.spans(range) {
            let (file, path) = self.file(span.segment)?;
            let io = |e: std::io::Error| io_error(path, e);
            if file.metadata().map_err(io)?.len() < span.in_file + span.len as u64 {
                return Ok(None);
            }
            file.seek(SeekFrom::Start(span.in_file)).map_err(io)?;
            file.read_exact(&mut data[span.at..span.at + span.len])
                .map_err(io)?;
        }
        Ok(Some(data))
    }

    fn write_range(&mut self, range: Range<u64>, data: &[u8]) -> Result<(), StoreError> {
        for span in self.spans(range) {
            let (file, path) = self.file(span.segment)?;
            let io = |e: std::io::Error| io_error(path, e);
            file.seek(SeekFrom::Start(span.in_file)).map_err(io)?;
            file.write_all(&data[span.at..span.at + span.len])
                .map_err(io)?;
        }
        Ok(())
    }
}

#[async_trait]
impl PieceStore for DiskStore {
    async fn verified(&self, info: &Info) -> Result<Bitfield, StoreError> {
        let info = info.clone();
        self.with_files(move |files| {
            let layout = info.layout();
            let mut have = Bitfield::new(layout.piece_count());
            for piece in layout.pieces() {
                if let Some(data) = files.read_range(layout.piece_range(piece))? {
                    if info.verify_piece(piece, &data) {
                        have.insert(piece);
                    }
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
        self.with_files(move |files| files.read_range(range))
            .await?
            .map(Bytes::from)
            .ok_or(StoreError::Missing(piece.get()))
    }

    async fn write(&self, piece: PieceIndex, data: Bytes) -> Result<(), StoreError> {
        if piece.get() >= self.layout.piece_count()
            || data.len() != self.layout.piece_len(piece) as usize
        {
            return Err(StoreError::OutOfRange(piece.get()));
        }
        let range = self.layout.piece_range(piece);
        self.with_files(move |files| files.write_range(range, &data))
            .await
    }

    /// Flushes every file of the torrent to the device (`fsync`), reopening
    /// those closed since they were written.
    async fn sync(&self) -> Result<(), StoreError> {
        self.with_files(|files| {
            for segment in &files.segments {
                let synced = match &segment.file {
                    Some(file) => file.sync_all(),
                    None => open_file(&segment.path)?.sync_all(),
                };
                synced.map_err(|e| io_error(&segment.path, e))?;
            }
            Ok(())
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

    #[tokio::test]
    async fn a_multi_file_torrent_lands_as_its_files_with_pieces_across_them() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path().join("album");
        std::fs::create_dir_all(root.join("disc 2")).unwrap();
        let parts: [(&str, usize); 4] = [
            ("a.flac", 40_000),
            ("empty.txt", 0),
            ("disc 2/b.flac", 9_000),
            ("disc 2/c.flac", 30_001),
        ];
        for (i, (name, len)) in parts.iter().enumerate() {
            let bytes: Vec<u8> = (0..*len).map(|j| (j * 7 + i * 31) as u8).collect();
            std::fs::write(root.join(name), bytes).unwrap();
        }
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .build_from_path(&root)
            .unwrap();
        let info = meta.info().clone();
        assert!(info.is_multi_file());

        // Seeding the folder as it is: every piece verifies.
        let seed = DiskStore::open(&root, &info).unwrap();
        assert!(seed.verified(&info).await.unwrap().is_full());

        // Copying piece by piece into a new folder rebuilds every file.
        let out = tempfile::tempdir().unwrap();
        let copy_root = out.path().join("copy");
        let copy = DiskStore::open(&copy_root, &info).unwrap();
        assert!(copy.verified(&info).await.unwrap().is_clear());
        for piece in info.layout().pieces() {
            copy.write(piece, seed.read(piece).await.unwrap())
                .await
                .unwrap();
        }
        assert!(copy.verified(&info).await.unwrap().is_full());
        for (name, _) in parts {
            assert_eq!(
                std::fs::read(copy_root.join(name)).unwrap(),
                std::fs::read(root.join(name)).unwrap(),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn thousands_of_files_stay_within_the_open_file_limit() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path().join("many");
        for i in 0..1_200usize {
            let dir = root.join(format!("d{}", i % 7));
            std::fs::create_dir_all(&dir).unwrap();
            let bytes: Vec<u8> = (0..(i * 37) % 5_000).map(|j| (i + j) as u8).collect();
            std::fs::write(dir.join(format!("f{i:04}")), bytes).unwrap();
        }
        let meta = TorrentBuilder::new()
            .piece_length(16 << 10)
            .build_from_path(&root)
            .unwrap();
        let info = meta.info().clone();
        assert_eq!(info.files().len(), 1_200);
        let open_now = |store: &DiskStore| store.files.lock().unwrap().open.len();

        let seed = DiskStore::open(&root, &info)
            .unwrap()
            .with_max_open_files(3);
        assert!(seed.verified(&info).await.unwrap().is_full());
        assert!(open_now(&seed) <= 3);

        let out = tempfile::tempdir().unwrap();
        let copy_root = out.path().join("copy");
        let copy = DiskStore::open(&copy_root, &info)
            .unwrap()
            .with_max_open_files(3);
        assert_eq!(open_now(&copy), 0, "files are created, not kept open");
        // Out of order, so handles are reopened as well as reused.
        let mut pieces: Vec<PieceIndex> = info.layout().pieces().collect();
        pieces.reverse();
        for piece in pieces {
            copy.write(piece, seed.read(piece).await.unwrap())
                .await
                .unwrap();
            assert!(open_now(&copy) <= 3 && open_now(&seed) <= 3);
        }
        assert!(copy.verified(&info).await.unwrap().is_full());
        for entry in info.files() {
            let rel = entry.path().iter().fold(PathBuf::new(), |p, c| p.join(c));
            assert_eq!(
                std::fs::read(copy_root.join(&rel)).unwrap(),
                std::fs::read(root.join(&rel)).unwrap(),
                "{}",
                rel.display()
            );
        }
    }
}
