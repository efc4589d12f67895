// chunkswarm's piece store on the Origin Private File System (OPFS).
//
// A dedicated worker, started by the wasm client from this source (a Blob
// URL, so nothing extra is served). Sync access handles exist only in
// dedicated workers; they read and write at any offset of one file, which
// the async API cannot do without copying the whole file on every write.
//
// Layout: /chunkswarm/<infohash>/data     the content, at its torrent offsets
//                                /have     one byte per piece: 1 once written
//                                /torrent  the .torrent, for listing
//
// Every request is { id, op, ... } and gets { id, ok: true, ... } or
// { id, ok: false, name, message } (name: the DOMException's, such as
// 'QuotaExceededError' or 'NoModificationAllowedError'). Requests run one at
// a time, in order.
//
//   open    { dir, length, pieceLength, hashes, torrent } -> { have, quota }
//           Opens (creating) the torrent's files and reserves `length`
//           bytes (`quota`: null, or the error if the quota cannot hold them). A sync access handle is exclusive, so a torrent open in
//           another tab fails with NoModificationAllowedError (retried for
//           a moment: a reloading page's old worker may still hold it).
//           Every piece marked in `have` is read back and its SHA-1
//           compared with `hashes`; `have` lists those that match.
//   reserve { dir } -> {}      sets the data file to its full length again
//   write   { dir, piece, at, data, length } -> { data }  (`data` handed back)
//   read    { dir, at, length, into? } -> { data }  (`into`, or a new buffer)
//
// Buffers are transferred both ways, so the page can reuse them: a worker
// left to collect a MiB of garbage per piece grows by hundreds of MiB
// before its next GC.
//   file    { dir } -> { file }  the data file as a disk-backed File
//   close   { dir } -> {}
//   remove  { dir } -> {}      deletes the torrent's folder (closing it here first)
//   list    {} -> { torrents: [{ dir, torrent, marked, size }], quota, usage }

const ROOT = 'chunkswarm';
/** How long `open` retries a file that another context holds. */
const LOCK_WAIT_MS = 3000;
/** Writes between two flushes of the data and have files. */
const FLUSH_EVERY = 32;

const ONE = new Uint8Array([1]);

/** dir -> { data, have, length, writes } */
const open = new Map();
let queue = Promise.resolve();

self.onmessage = ({ data: request }) => {
  queue = queue.then(() => handle(request)).catch(() => {});
};

async function handle(request) {
  try {
    const [reply, transfer] = await run(request);
    self.postMessage({ id: request.id, ok: true, ...reply }, transfer || []);
  } catch (error) {
    self.postMessage({
      id: request.id,
      ok: false,
      name: (error && error.name) || 'Error',
      message: String((error && error.message) || error),
    });
  }
}

async function folder(create) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(ROOT, { create });
}

async function torrentFolder(dir, create) {
  return (await folder(create)).getDirectoryHandle(dir, { create });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A sync access handle, waiting a little while another context holds it. */
async function exclusive(file) {
  const until = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      return await file.createSyncAccessHandle();
    } catch (error) {
      if (error.name !== 'NoModificationAllowedError' || Date.now() > until) throw error;
      await sleep(100);
    }
  }
}

class QuotaExceededError extends Error {
  constructor(message) {
    super(message);
    this.name = 'QuotaExceededError';
  }
}

/** Sets the data file to `length`, first checking that the origin's quota
 * has room: growing a file is not always refused when it runs past it. */
async function reserve(data, length) {
  const grow = length - data.getSize();
  if (grow <= 0) return;
  const { quota, usage } = await navigator.storage.estimate();
  if (quota !== undefined && usage !== undefined && quota - usage < grow) {
    throw new QuotaExceededError(`the file needs ${grow} more bytes, the origin's quota has ${Math.max(0, quota - usage)} left`);
  }
  data.truncate(length);
}

function opened(dir) {
  const entry = open.get(dir);
  if (!entry) throw new Error(`torrent ${dir} is not open`);
  return entry;
}

function pieceLengthOf(index, pieceLength, length) {
  return Math.min(pieceLength, length - index * pieceLength);
}

function sameDigest(digest, hashes, index) {
  const got = new Uint8Array(digest);
  for (let i = 0; i < 20; i++) if (got[i] !== hashes[index * 20 + i]) return false;
  return true;
}

async function run(request) {
  switch (request.op) {
    case 'open': {
      const { dir, length, pieceLength, hashes, torrent } = request;
      if (open.has(dir)) throw new Error(`torrent ${dir} is already open`);
      if (!self.FileSystemFileHandle || !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) {
        throw Object.assign(new Error('this browser has no OPFS sync access handles'), { name: 'NotSupportedError' });
      }
      const pieces = hashes.length / 20;
      const folderHandle = await torrentFolder(dir, true);
      const data = await exclusive(await folderHandle.getFileHandle('data', { create: true }));
      let have;
      try {
        have = await exclusive(await folderHandle.getFileHandle('have', { create: true }));
      } catch (error) {
        data.close();
        throw error;
      }
      const entry = { data, have, length, writes: 0 };
      try {
        const meta = await exclusive(await folderHandle.getFileHandle('torrent', { create: true }));
        if (meta.getSize() !== torrent.byteLength) {
          meta.truncate(0);
          meta.write(torrent, { at: 0 });
        }
        meta.close();
        const marks = new Uint8Array(pieces);
        if (have.getSize() === pieces) have.read(marks, { at: 0 });
        else have.truncate(pieces);
        // Reserve the whole file now, so the quota runs out here, not mid-download.
        let reserved = null;
        try {
          await reserve(data, length);
        } catch (error) {
          if (error.name !== 'QuotaExceededError') throw error;
          reserved = { name: error.name, message: String(error.message) };
        }
        const buffer = new Uint8Array(pieceLength);
        for (let index = 0; index < pieces; index++) {
          if (marks[index] !== 1) {
            marks[index] = 0;
            continue;
          }
          const len = pieceLengthOf(index, pieceLength, length);
          const view = buffer.subarray(0, len);
          const read = data.read(view, { at: index * pieceLength });
          const ok = read === len && sameDigest(await crypto.subtle.digest('SHA-1', view), hashes, index);
          if (!ok) marks[index] = 0;
        }
        have.write(marks, { at: 0 });
        have.flush();
        open.set(dir, entry);
        return [{ have: marks, quota: reserved }, [marks.buffer]];
      } catch (error) {
        data.close();
        have.close();
        throw error;
      }
    }
    case 'reserve': {
      const entry = opened(request.dir);
      await reserve(entry.data, entry.length);
      return [{}];
    }
    case 'write': {
      // `data` comes back with the reply, for the page to fill again.
      const entry = opened(request.dir);
      const bytes = new Uint8Array(request.data, 0, request.length);
      const written = entry.data.write(bytes, { at: request.at });
      if (written !== bytes.length) {
        throw new Error(`wrote ${written} of ${bytes.length} bytes of piece ${request.piece}`);
      }
      entry.have.write(ONE, { at: request.piece });
      entry.writes += 1;
      if (entry.writes % FLUSH_EVERY === 0) {
        entry.data.flush();
        entry.have.flush();
      }
      return [{ data: request.data }, [request.data]];
    }
    case 'read': {
      // Into `into` when the page lends a buffer, else a new one.
      const entry = opened(request.dir);
      const buffer = request.into || new ArrayBuffer(request.length);
      const bytes = new Uint8Array(buffer, 0, request.length);
      const read = entry.data.read(bytes, { at: request.at });
      if (read !== bytes.length) throw new Error(`read ${read} of ${bytes.length} bytes at ${request.at}`);
      return [{ data: buffer }, [buffer]];
    }
    case 'file': {
      const entry = opened(request.dir);
      entry.data.flush();
      const handle = await (await torrentFolder(request.dir, false)).getFileHandle('data');
      return [{ file: await handle.getFile() }];
    }
    case 'close': {
      const entry = open.get(request.dir);
      if (entry) {
        open.delete(request.dir);
        for (const handle of [entry.data, entry.have]) {
          handle.flush();
          handle.close();
        }
      }
      return [{}];
    }
    case 'remove': {
      const entry = open.get(request.dir);
      if (entry) {
        open.delete(request.dir);
        entry.data.close();
        entry.have.close();
      }
      await (await folder(true)).removeEntry(request.dir, { recursive: true });
      return [{}];
    }
    case 'list': {
      const torrents = [];
      const base = await folder(true);
      for await (const [dir, handle] of base.entries()) {
        if (handle.kind !== 'directory') continue;
        const files = {};
        for await (const [name, file] of handle.entries()) {
          if (file.kind === 'file') files[name] = await file.getFile();
        }
        if (!files.torrent) continue;
        const marks = files.have ? new Uint8Array(await files.have.arrayBuffer()) : new Uint8Array(0);
        let marked = 0;
        for (const mark of marks) marked += mark === 1 ? 1 : 0;
        torrents.push({
          dir,
          torrent: new Uint8Array(await files.torrent.arrayBuffer()),
          marked,
          size: files.data ? files.data.size : 0,
          open: open.has(dir),
        });
      }
      const estimate = await navigator.storage.estimate();
      return [{ torrents, quota: estimate.quota ?? null, usage: estimate.usage ?? null }];
    }
    default:
      throw new Error(`unknown request ${JSON.stringify(request.op)}`);
  }
}
