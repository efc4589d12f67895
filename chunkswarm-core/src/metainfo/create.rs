//! Creating torrents: hash content as it streams past, then write the metainfo.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use super::info::safe_component;
use super::{Info, InfoError, Metainfo, PieceHash};
use crate::layout::{DEFAULT_PIECE_LENGTH, MAX_PIECE_LENGTH};

/// Bytes read from the input at a time: large enough that SHA-1, not the
/// syscalls, sets the speed; small enough to be constant memory.
const READ_CHUNK: usize = 1 << 20;

/// How deep directories may nest below the torrent's root.
pub const MAX_DIR_DEPTH: usize = 64;

/// Why a torrent could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Reading the content failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A file name is not UTF-8, so it cannot be written into a torrent.
    #[error("file name {0:?} is not UTF-8")]
    NonUtf8Name(PathBuf),
    /// Directories nest deeper than [`MAX_DIR_DEPTH`] (perhaps a symbolic-link loop).
    #[error("{0} is more than {MAX_DIR_DEPTH} directories deep")]
    TooDeep(PathBuf),
    /// The piece length is zero or too large.
    #[error("piece length {0} is outside 1..={MAX_PIECE_LENGTH}")]
    PieceLength(u32),
    /// The result is not a valid torrent (for example, the content is empty).
    #[error(transparent)]
    Info(#[from] InfoError),
}

/// Cuts a byte stream into pieces and hashes each with SHA-1, in constant memory.
///
/// Sans-IO: feed it the content in order with [`update`](Self::update), in
/// chunks of any size, then call [`finish`](Self::finish).
#[derive(Debug, Clone)]
pub struct PieceHasher {
    piece_length: u64,
    current: Sha1,
    filled: u64,
    total: u64,
    hashes: Vec<PieceHash>,
}

impl PieceHasher {
    /// A hasher for pieces of `piece_length` bytes (must be at least 1).
    pub fn new(piece_length: u32) -> Self {
        Self {
            piece_length: u64::from(piece_length.max(1)),
            current: Sha1::new(),
            filled: 0,
            total: 0,
            hashes: Vec::new(),
        }
    }

    /// Hashes the next bytes of the content.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let room = self.piece_length - self.filled;
            let take = (data.len() as u64).min(room) as usize;
            let (now, rest) = data.split_at(take);
            self.current.update(now);
            self.filled += take as u64;
            data = rest;
            if self.filled == self.piece_length {
                let digest = std::mem::take(&mut self.current).finalize();
                self.hashes.push(PieceHash(digest.into()));
                self.filled = 0;
            }
        }
    }

    /// Bytes hashed so far.
    pub fn total_length(&self) -> u64 {
        self.total
    }

    /// The hash of every piece, the short last one included.
    pub fn finish(mut self) -> Vec<PieceHash> {
        if self.filled > 0 {
            self.hashes.push(PieceHash(self.current.finalize().into()));
        }
        self.hashes
    }
}

/// Creates BitTorrent v1 torrents, single- or multi-file.
///
/// Defaults: 1 MiB pieces, `created by` chunkswarm, no creation date (so the
/// same content gives the same bytes), no trackers, no web seeds.
#[derive(Debug, Clone)]
pub struct TorrentBuilder {
    piece_length: u32,
    trackers: Vec<String>,
    web_seeds: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    private: bool,
}

impl Default for TorrentBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TorrentBuilder {
    /// A builder with the defaults above.
    pub fn new() -> Self {
        Self {
            piece_length: DEFAULT_PIECE_LENGTH,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            comment: None,
            created_by: Some(concat!("chunkswarm ", env!("CARGO_PKG_VERSION")).to_owned()),
            creation_date: None,
            private: false,
        }
    }

    /// Sets the piece length in bytes.
    pub fn piece_length(mut self, bytes: u32) -> Self {
        self.piece_length = bytes;
        self
    }

    /// Adds a tracker. The first becomes `announce`; with more than one, each
    /// is also its own tier in `announce-list` (BEP 12).
    pub fn announce(mut self, url: impl Into<String>) -> Self {
        self.trackers.push(url.into());
        self
    }

    /// Adds a BEP 19 web seed: an HTTP URL serving the content (the file, or
    /// for a multi-file torrent the directory the files are under).
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        self.web_seeds.push(url.into());
        self
    }

    /// Sets the `comment`.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets `created by`, or leaves it out with `None`.
    pub fn created_by(mut self, program: Option<String>) -> Self {
        self.created_by = program;
        self
    }

    /// Sets the `creation date` in seconds since the Unix epoch.
    pub fn creation_date(mut self, unix_seconds: i64) -> Self {
        self.creation_date = Some(unix_seconds);
        self
    }

    /// Sets the BEP 27 private flag.
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// A single-file torrent named `name` of everything `reader` yields.
    pub fn build_from_reader(
        self,
        name: &str,
        mut reader: impl Read,
    ) -> Result<Metainfo, CreateError> {
        let mut hasher = self.hasher()?;
        let mut buffer = vec![0u8; READ_CHUNK];
        hash_stream(&mut reader, &mut hasher, &mut buffer).map_err(|source| CreateError::Io {
            path: PathBuf::from(name),
            source,
        })?;
        let length = hasher.total_length();
        let files = vec![(vec![name.to_owned()], length)];
        self.finish(name.to_owned(), hasher.finish(), files, false)
    }

    /// A multi-file torrent named `name` of `files`: each its path below
    /// the torrent's directory and a reader of its bytes, in the order
    /// given (which is the content's order; [`build_from_path`] sorts by
    /// path). For content that is not on a local disk, as in a browser.
    ///
    /// [`build_from_path`]: Self::build_from_path
    pub fn build_from_files<R: Read>(
        self,
        name: &str,
        files: impl IntoIterator<Item = (Vec<String>, R)>,
    ) -> Result<Metainfo, CreateError> {
        let mut hasher = self.hasher()?;
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut lengths = Vec::new();
        for (path, mut reader) in files {
            let before = hasher.total_length();
            hash_stream(&mut reader, &mut hasher, &mut buffer).map_err(|source| {
                CreateError::Io {
                    path: path.iter().collect(),
                    source,
                }
            })?;
            lengths.push((path, hasher.total_length() - before));
        }
        self.finish(name.to_owned(), hasher.finish(), lengths, true)
    }

    /// A torrent of a file, or of every regular file below a directory
    /// (multi-file, in sorted path order; symbolic links are followed).
    /// Lengths are what was read, so a file that changes size while it is
    /// hashed still gives a consistent torrent.
    ///
    /// Blocks: it reads and hashes every byte with `std::fs` (about a
    /// second per few hundred MiB). In async code run it in
    /// `tokio::task::spawn_blocking` or a thread of its own.
    pub fn build_from_path(self, path: &Path) -> Result<Metainfo, CreateError> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CreateError::Io { path, source }
        };
        // Canonical, so that `.` or `dir/..` still yields a real name.
        let name = utf8_name(&std::fs::canonicalize(path).map_err(io_error(path))?)?;
        let metadata = std::fs::metadata(path).map_err(io_error(path))?;
        if !metadata.is_dir() {
            let file = File::open(path).map_err(io_error(path))?;
            return self.build_from_reader(&name, file).map_err(|e| match e {
                CreateError::Io { source, .. } => CreateError::Io {
                    path: path.to_path_buf(),
                    source,
                },
                other => other,
            });
        }

        let mut relative_paths = Vec::new();
        collect_files(path, &mut Vec::new(), &mut relative_paths)?;
        relative_paths.sort();
        let mut hasher = self.hasher()?;
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut files = Vec::with_capacity(relative_paths.len());
        for components in relative_paths {
            let full: PathBuf = components.iter().fold(path.to_path_buf(), |p, c| p.join(c));
            let before = hasher.total_length();
            let mut file = File::open(&full).map_err(io_error(&full))?;
            hash_stream(&mut file, &mut hasher, &mut buffer).map_err(io_error(&full))?;
            files.push((components, hasher.total_length() - before));
        }
        self.finish(name, hasher.finish(), files, true)
    }

    fn hasher(&self) -> Result<PieceHasher, CreateError> {
        if self.piece_length == 0 || self.piece_length > MAX_PIECE_LENGTH {
            return Err(CreateError::PieceLength(self.piece_length));
        }
        Ok(PieceHasher::new(self.piece_length))
    }

    fn finish(
        self,
        name: String,
        hashes: Vec<PieceHash>,
        files: Vec<(Vec<String>, u64)>,
        multi_file: bool,
    ) -> Result<Metainfo, CreateError> {
        let info = Info::create(
            name,
            self.piece_length,
            hashes,
            files,
            multi_file,
            self.private,
        )?;
        let mut trackers = self.trackers.into_iter();
        let announce = trackers.next();
        let announce_list = match (&announce, trackers.len()) {
            (Some(first), 1..) => std::iter::once(first.clone())
                .chain(trackers)
                .map(|url| vec![url])
                .collect(),
            _ => Vec::new(),
        };
        Ok(Metainfo {
            info,
            announce,
            announce_list,
            web_seeds: self.web_seeds,
            comment: self.comment,
            created_by: self.created_by,
            creation_date: self.creation_date,
        })
    }
}

fn hash_stream(
    reader: &mut impl Read,
    hasher: &mut PieceHasher,
    buffer: &mut [u8],
) -> io::Result<()> {
    loop {
        match reader.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => hasher.update(&buffer[..n.min(buffer.len())]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn utf8_name(path: &Path) -> Result<String, CreateError> {
    let name = path
        .file_name()
        .ok_or_else(|| CreateError::NonUtf8Name(path.to_path_buf()))?;
    let name = name
        .to_str()
        .ok_or_else(|| CreateError::NonUtf8Name(path.to_path_buf()))?;
    Ok(safe_component(name.to_owned())?)
}

/// Appends the path components of every regular file below `dir`.
fn collect_files(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> Result<(), CreateError> {
    let io_error = |source| CreateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if prefix.len() >= MAX_DIR_DEPTH {
        return Err(CreateError::TooDeep(dir.to_path_buf()));
    }
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let name = utf8_name(&path)?;
        // Follows symbolic links, as torrent creators do.
        let metadata = std::fs::metadata(&path).map_err(|source| CreateError::Io {
            path: path.clone(),
            source,
        })?;
        prefix.push(name);
        if metadata.is_dir() {
            collect_files(&path, prefix, out)?;
        } else if metadata.is_file() {
            out.push(prefix.clone());
        }
        prefix.pop();
    }
    Ok(())
}
