//! The info dictionary: what the content is, checked on the way in.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use bt_bencode::{ByteString, Value};
use bytes::Bytes;
use sha1::{Digest, Sha1};

use super::bencode_check::{self, BencodeError};
use crate::layout::{Layout, LayoutError, PieceIndex};

/// Why an info dictionary is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    /// The bytes are not well-formed bencode.
    #[error(transparent)]
    Bencode(#[from] BencodeError),
    /// The bencode did not decode.
    #[error("undecodable info dictionary: {0}")]
    Decode(String),
    /// The info value is not a dictionary.
    #[error("info is not a dictionary")]
    NotADictionary,
    /// A required key is absent.
    #[error("info has no `{0}`")]
    Missing(&'static str),
    /// A key holds the wrong kind of value.
    #[error("`{key}` must be {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it must hold.
        expected: &'static str,
    },
    /// A name or path is not UTF-8.
    #[error("`{0}` is not UTF-8")]
    NotUtf8(&'static str),
    /// A name or path component that could escape the download folder or is empty.
    #[error("unsafe file name or path component {0:?}")]
    UnsafePath(String),
    /// Both or neither of `length` (single file) and `files` (multi-file).
    #[error("info must have exactly one of `length` and `files`")]
    AmbiguousMode,
    /// A `files` list with no entries.
    #[error("`files` is empty")]
    NoFiles,
    /// The file lengths add up past `u64`.
    #[error("file lengths overflow")]
    LengthOverflow,
    /// `pieces` is not a whole number of 20-byte hashes.
    #[error("`pieces` has {0} bytes, not a multiple of 20")]
    PiecesLength(usize),
    /// The number of hashes does not match the geometry.
    #[error("{got} piece hashes for {expected} pieces")]
    PieceCount {
        /// Pieces the geometry has.
        expected: u32,
        /// Hashes present.
        got: usize,
    },
    /// The geometry is unusable (empty content, bad piece length).
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// A swarm's identity: the SHA-1 of the bencoded info dictionary.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHash([u8; 20]);

impl InfoHash {
    /// Wraps 20 bytes.
    pub const fn new(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The hash of these info-dictionary bytes.
    pub fn of(info_bytes: &[u8]) -> Self {
        Self(Sha1::digest(info_bytes).into())
    }

    /// The 20 bytes, as the handshake and tracker carry them.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Parses the 40-digit hex form (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 40 {
            return None;
        }
        let mut bytes = [0u8; 20];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// The 40-digit lowercase hex form, as in magnet links and tracker URLs.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

/// The SHA-1 a piece must hash to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceHash(pub [u8; 20]);

impl PieceHash {
    /// Whether `data` is the piece this hash names.
    pub fn matches(&self, data: &[u8]) -> bool {
        <[u8; 20]>::from(Sha1::digest(data)) == self.0
    }
}

impl fmt::Debug for PieceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PieceHash(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str(")")
    }
}

/// One file of the content: its path and where it lies in the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    path: Vec<String>,
    length: u64,
    offset: u64,
}

impl FileEntry {
    /// Path components below the torrent's directory; for a single-file
    /// torrent, just the file name. Every component is non-empty, not `.` or
    /// `..`, and holds no `/`, `\` or NUL.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// Length in bytes (may be 0).
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Offset of the file's first byte in the content stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The file's bytes in the content stream.
    pub fn byte_range(&self) -> Range<u64> {
        self.offset..self.offset + self.length
    }
}

/// The info dictionary, decoded and checked, with its exact encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    name: String,
    layout: Layout,
    piece_hashes: Vec<PieceHash>,
    files: Vec<FileEntry>,
    multi_file: bool,
    private: bool,
    encoded: Bytes,
    info_hash: InfoHash,
}

impl Info {
    /// Decodes and checks an info dictionary from its exact bytes.
    pub fn from_bytes(encoded: &[u8]) -> Result<Self, InfoError> {
        bencode_check::check(encoded)?;
        let value: Value =
            bt_bencode::from_slice(encoded).map_err(|e| InfoError::Decode(e.to_string()))?;
        let dict = value.as_dict().ok_or(InfoError::NotADictionary)?;

        let name = safe_component(text(required(dict, "name")?, "name")?)?;
        let piece_length =
            required(dict, "piece length")?
                .as_u64()
                .ok_or(InfoError::WrongType {
                    key: "piece length",
                    expected: "a non-negative integer",
                })?;
        let pieces = bytes(required(dict, "pieces")?, "pieces")?;
        let private = dict
            .get(b"private".as_slice())
            .is_some_and(|flag| flag.as_u64() == Some(1) || flag.as_i64() == Some(1));

        let (files, multi_file) = match (
            dict.get(b"length".as_slice()),
            dict.get(b"files".as_slice()),
        ) {
            (Some(length), None) => {
                let length = length.as_u64().ok_or(InfoError::WrongType {
                    key: "length",
                    expected: "a non-negative integer",
                })?;
                let file = FileEntry {
                    path: vec![name.clone()],
                    length,
                    offset: 0,
                };
                (vec![file], false)
            }
            (None, Some(files)) => (file_list(files)?, true),
            _ => return Err(InfoError::AmbiguousMode),
        };
        let total_length = files.last().map_or(0, |f| f.offset + f.length);
        let layout = Layout::new(total_length, piece_length)?;
        let piece_hashes = piece_hashes(pieces, layout)?;

        Ok(Self {
            name,
            layout,
            piece_hashes,
            files,
            multi_file,
            private,
            encoded: Bytes::copy_from_slice(encoded),
            info_hash: InfoHash::of(encoded),
        })
    }

    /// The suggested name: the file name, or the directory name of a multi-file torrent.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Piece and block geometry of the content.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Length of the content in bytes.
    pub fn total_length(&self) -> u64 {
        self.layout.total_length()
    }

    /// The SHA-1 every piece must hash to, in piece order.
    pub fn piece_hashes(&self) -> &[PieceHash] {
        &self.piece_hashes
    }

    /// The hash of one piece.
    pub fn piece_hash(&self, piece: PieceIndex) -> Option<&PieceHash> {
        self.piece_hashes.get(piece.as_usize())
    }

    /// Whether `data` is exactly this piece's content.
    pub fn verify_piece(&self, piece: PieceIndex, data: &[u8]) -> bool {
        data.len() == self.layout.piece_len(piece) as usize
            && self
                .piece_hash(piece)
                .is_some_and(|hash| hash.matches(data))
    }

    /// The files in content order; one entry for a single-file torrent.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Whether this is a multi-file torrent (files below a directory `name`).
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// The BEP 27 private flag.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The dictionary's bytes exactly as received or created.
    pub fn encoded(&self) -> &Bytes {
        &self.encoded
    }

    /// SHA-1 of [`encoded`](Self::encoded).
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }
}

type Dict = BTreeMap<ByteString, Value>;

fn required<'a>(dict: &'a Dict, key: &'static str) -> Result<&'a Value, InfoError> {
    dict.get(key.as_bytes()).ok_or(InfoError::Missing(key))
}

fn bytes<'a>(value: &'a Value, key: &'static str) -> Result<&'a [u8], InfoError> {
    value
        .as_byte_str()
        .map(|b| b.as_slice())
        .ok_or(InfoError::WrongType {
            key,
            expected: "a byte string",
        })
}

fn text(value: &Value, key: &'static str) -> Result<String, InfoError> {
    let raw = bytes(value, key)?;
    String::from_utf8(raw.to_vec()).map_err(|_| InfoError::NotUtf8(key))
}

/// Accepts a name or path component only if it cannot leave its directory.
pub(super) fn safe_component(component: String) -> Result<String, InfoError> {
    let unsafe_ = component.is_empty()
        || component == "."
        || component == ".."
        || component.contains(['/', '\\', '\0']);
    if unsafe_ {
        Err(InfoError::UnsafePath(component))
    } else {
        Ok(component)
    }
}

fn file_list(files: &Value) -> Result<Vec<FileEntry>, InfoError> {
    let wrong = |key, expected| InfoError::WrongType { key, expected };
    let list = files.as_list().ok_or(wrong("files", "a list"))?;
    if list.is_empty() {
        return Err(InfoError::NoFiles);
    }
    let mut offset = 0u64;
    let mut entries = Vec::with_capacity(list.len());
    for file in list {
        let file = file
            .as_dict()
            .ok_or(wrong("files", "a list of dictionaries"))?;
        let length = required(file, "length")?
            .as_u64()
            .ok_or(wrong("length", "a non-negative integer"))?;
        let components = required(file, "path")?
            .as_list()
            .filter(|path| !path.is_empty())
            .ok_or(wrong("path", "a non-empty list of byte strings"))?;
        let path = components
            .iter()
            .map(|c| text(c, "path").and_then(safe_component))
            .collect::<Result<Vec<_>, _>>()?;
        entries.push(FileEntry {
            path,
            length,
            offset,
        });
        offset = offset
            .checked_add(length)
            .ok_or(InfoError::LengthOverflow)?;
    }
    Ok(entries)
}

fn piece_hashes(pieces: &[u8], layout: Layout) -> Result<Vec<PieceHash>, InfoError> {
    if pieces.len() % 20 != 0 {
        return Err(InfoError::PiecesLength(pieces.len()));
    }
    let got = pieces.len() / 20;
    if got != layout.piece_count() as usize {
        return Err(InfoError::PieceCount {
            expected: layout.piece_count(),
            got,
        });
    }
    Ok(pieces
        .chunks_exact(20)
        .map(|chunk| {
            let mut hash = [0u8; 20];
            hash.copy_from_slice(chunk);
            PieceHash(hash)
        })
        .collect())
}

impl Info {
    /// Assembles an info dictionary for content this process hashed itself,
    /// encoding it canonically. Used by the torrent builder.
    pub(super) fn create(
        name: String,
        piece_length: u32,
        piece_hashes: Vec<PieceHash>,
        files: Vec<(Vec<String>, u64)>,
        multi_file: bool,
        private: bool,
    ) -> Result<Self, InfoError> {
        let encoded = super::encode::info_dict(
            &name,
            piece_length,
            &piece_hashes,
            &files,
            multi_file,
            private,
        );
        // Parse what was written: one code path decides what a valid info is.
        Self::from_bytes(&encoded)
    }
}
