//! chunkswarm in the browser.
//!
//! This crate is the browser adapter of [`chunkswarm_core`]: it implements
//! the driver's I/O traits with `web-sys` and exposes a JavaScript API made
//! with `wasm-bindgen`. A page running it downloads a torrent's pieces from
//! other pages and native chunkswarm peers over WebRTC data channels, falls
//! back to the web seed over `fetch`, and keeps serving (seeding) every
//! verified piece to the swarm for as long as its client lives.
//!
//! # Build
//!
//! `chunkswarm-wasm/build-pkg.sh OUT_DIR` builds the release `cdylib` for
//! `wasm32-unknown-unknown`, runs `wasm-bindgen --target web` (the CLI must
//! be at exactly the version of the `wasm-bindgen` crate, pinned in the
//! workspace) and copies the streaming helpers of `js/` next to it. The
//! result is an ES module, `chunkswarm_wasm.js`, with TypeScript types.
//!
//! # JavaScript API
//!
//! ```ts
//! import init, { Client } from './chunkswarm_wasm.js';
//! await init();
//! const client = new Client({ trackerUrl: 'ws://127.0.0.1:8000/announce' });
//! client.onEvent(e => { if (e.type === 'log') console.log(e.level, e.message); });
//! const torrent = await client.addTorrent('/media/film.torrent');
//! torrent.onEvent(e => { if (e.type === 'piece') paint(e.piece, e.state, e.source); });
//! torrent.setPlayback(0, torrent.length / 60);      // stream: window at the start
//! const head = await torrent.read(0, 65536);        // resolves when verified
//! const file = await torrent.blob('video/webm');    // resolves when complete
//! await client.destroy();                           // announces `stopped`
//! ```
//!
//! - `new Client(options?)`: options `{ trackerUrl?, iceServers?,
//!   iceTransportPolicy? /* 'all' | 'relay' */, maxConnections?, uploadLimit? /* bytes/s */, storage?, memoryCache? }`
//!   where `storage` is `'auto'` (default: OPFS where the browser has it,
//!   memory otherwise), `'opfs'` or `'memory'`, and `memoryCache` the bytes
//!   of pieces each torrent keeps in memory to serve peers (default 8 MiB). Starts the driver at
//!   once; the tracker WebSocket connects in the background and reconnects
//!   with backoff after a drop. Without `trackerUrl` torrents use their web
//!   seed alone. Throws on bad options or a URL the browser refuses.
//!   `client.peerId` is `-CS0001-` plus twelve random characters
//!   (`crypto.getRandomValues`).
//! - `client.addTorrent(source, options?)`: `source` is the URL of a
//!   `.torrent`, its bytes (`Uint8Array`, at most 32 MiB), or a magnet link
//!   (its `.torrent` from its `xs`; without one, its metadata from the peers
//!   the client's tracker introduces, verified against the infohash, within
//!   2 minutes; its trackers and `ws` web seeds join the torrent's); options
//!   `{ webSeed?, strategy? }` where `webSeed` overrides the torrent's
//!   `url-list` (the first `http(s)` entry is used otherwise; `false`: none;
//!   either is read as BEP 19 says, so a multi-file torrent's files are at
//!   `url/name/path/of/file`) and `strategy`
//!   is `'streaming'` (default), `'rarest'` or `'sequential'`. Resolves with
//!   a `Torrent`; rejects on a malformed torrent or one already added.
//! - `client.onEvent(listener)` / `torrent.onEvent(listener)`: every
//!   `ClientEvent` of all torrents, or of one. Events are `piece` (state
//!   `missing | requested | verified`, source `peer | http | null`, peer key),
//!   `peer` (`connected | disconnected | banned`, peer key, peer id, reason),
//!   `progress` (a `Stats`), `hashFailed`, `httpFailed`, `done`, `storage`
//!   (store `opfs | memory`, state `ready | full | failed`, the reason for
//!   a fallback or a stop, and the pieces found stored when added), and `log`
//!   (level and message: tracker connected/closed, offers made and
//!   answered, channels connecting/open/closed, failures; `infoHash` when
//!   the line concerns one torrent). A throwing listener does not stop the
//!   others.
//! - `client.destroy()`: announces `stopped` for every torrent, closes every
//!   channel and the tracker socket; resolves when the driver has ended.
//! - `Torrent`: `infoHash` (hex), `name`, `length`, `pieceLength`,
//!   `pieceCount`, `done`; `stats()` → `Promise<Stats>`; `peers()` →
//!   `Promise<PeerInfo[]>`; `pieceStates()` → `Uint8Array` (0 missing,
//!   1 requested from a peer, 2 requested over HTTP, 3 verified from peers,
//!   4 verified from HTTP); `setPlayback(position, bitrate)` (byte offset,
//!   bytes per second: moves the streaming window, call it on seek) and
//!   `clearPlayback()`; `pause()` / `resume()`; `read(start, end)` →
//!   `Promise<Uint8Array>` with bytes `[start, end)` once verified (`end`
//!   clamped to the length); `file(type?)` → `Promise<File>` once complete
//!   (on OPFS the stored file itself, read from disk as it is used;
//!   `blob(type?)` is the same); `storage` (`'opfs' | 'memory'`);
//!   `resume()` → `Promise<void>`; `remove()` → `Promise<boolean>` stops the
//!   torrent (announcing `stopped`), rejects its pending reads and lets it
//!   be added again (its stored pieces stay).
//! - `client.storage()` → `Promise<StorageInfo>`: the torrents stored in
//!   this origin (name, length, pieces and bytes stored, whether open
//!   here) and the origin's quota and usage; `client.removeStored(infoHash)`
//!   deletes one (stopping it first if it runs here; rejects if another tab
//!   has it open).
//!
//! Numbers are JS numbers. Bad arguments (negative or fractional offsets,
//! wrong types) throw or reject with an `Error`; nothing panics.
//!
//! # Storage: the file is on disk, not in memory
//!
//! Where the browser has the Origin Private File System with sync access
//! handles, a torrent's verified pieces go to one OPFS file
//! (`store::opfs::OpfsStore`, wasm32 only) and the page keeps only a bounded cache
//! (`memoryCache` of pieces for uploads, plus the pieces in flight), so a
//! film of several GiB downloads, streams and seeds in a tab. Elsewhere, with
//! `storage: 'memory'`, or when another tab has the same torrent open, the
//! pieces stay in memory ([`store::PieceBuffer`]); the `storage` event says
//! which store a torrent uses and why.
//!
//! - **How OPFS is reached: sync access handles in a dedicated worker.**
//!   Measured in headless Chromium writing and reading 512 MiB in 1 MiB
//!   pieces: the async API (one file per piece, `createWritable` per write)
//!   wrote 46–90 MiB/s and read 127–222 MiB/s; sync access handles in a
//!   worker, fed with transferred buffers, wrote 121–206 MiB/s and read
//!   561–750 MiB/s; the async API on one file (`keepExistingData` per piece)
//!   wrote 4 MiB/s, since each write copies the file. A sync access handle
//!   writes at any offset of one file, is exclusive (so two tabs cannot
//!   corrupt each other's store), and `getFile()` on it gives a disk-backed
//!   `File`. The worker (`web/opfs_worker.js`) starts from a Blob URL: no
//!   extra file to serve (a page whose CSP forbids `blob:` workers falls
//!   back to memory).
//! - **Layout**: `/chunkswarm/<infohash>/data` (the content at its offsets,
//!   its full length reserved when the torrent is added), `have` (one byte
//!   per piece, set after the piece is written) and `torrent` (the
//!   `.torrent`, for the storage listing).
//! - **Resume, proven**: when a torrent is added again (after a reload, or
//!   days later) every piece marked in `have` is read back and its SHA-1
//!   compared with the torrent's, in the worker with WebCrypto; only those
//!   that match count as held, so nothing unverified is ever served, played
//!   or announced. They are announced to the tracker and peers and seeded at
//!   once, and only the rest is fetched.
//! - **Quota**: the file's full length is reserved when the torrent is
//!   added. If the origin's quota cannot hold it, the torrent is added
//!   paused with a `storage` event `full`, and `resume()` tries again (after
//!   the user freed space, with `removeStored`, say). If a write fails later
//!   (the disk itself is full), the piece stays in memory, readable and
//!   served, the torrent pauses with a `storage` event `full` or `failed`,
//!   and `resume()` writes the kept pieces first. Nothing verified is lost.
//! - **Two tabs**: the second tab that opens a torrent falls back to memory
//!   (the `storage` event's reason says so), after waiting briefly for a
//!   reloading page to release the file.
//!
//! The engine writes only pieces that passed their SHA-1 check, so `read`,
//! `file` and `blob` never return unverified bytes.
//!
//! # Streaming playback: a Service Worker, not MSE
//!
//! `js/stream.js` exports `streamTo(torrent, video, { swUrl, scope })`: it
//! registers `js/chunkswarm-sw.js`, points the `<video>` at a URL the worker
//! answers, serves the worker's byte-range requests with `torrent.read()`
//! over a `MessageChannel`, and keeps `setPlayback` in step with the
//! element's `currentTime` (bitrate = length / duration once known) and with
//! seeks. The browser's own demuxer then plays any container it can play
//! from a URL (WebM, MP4 with the index anywhere), asks for exactly the byte
//! ranges it needs, and seeks by asking for other ranges: a seek becomes a
//! range request, which becomes `setPlayback`. Media Source Extensions
//! would instead make us parse the container to cut it into
//! init/media segments (and MP4 files need fragmenting first), and a seek
//! would need our own byte-offset index; MSE is also absent from iPhone
//! Safari. The cost of the worker: a secure context (HTTPS or localhost) and
//! a page inside the worker's scope (serve the worker script from the
//! page's directory or send `Service-Worker-Allowed`).
//!
//! # How it is wired
//!
//! A `Client` runs one [`driver`](chunkswarm_core::driver::driver) future
//! with `wasm_bindgen_futures::spawn_local`, with `web::tracker` as its
//! signaling, `web::rtc` as its connector (non-trickle offers, one ordered
//! channel labelled `chunkswarm`, messages of at most 64 KiB, backpressure on
//! `bufferedAmount` with a 1 MiB high and 256 KiB low mark),
//! `web::http::FetchWebSeed` as each torrent's origin and
//! `web::sleep::TimeoutSleeper` as its clock. A second task delivers the
//! driver's events and the adapter's log lines to listeners.
//!
//! # Tests
//!
//! `chunkswarm-wasm/tests/run-browser-tests.sh` runs the `wasm-bindgen-test`
//! suites in headless Chromium inside a network namespace it makes
//! (`unshare -n`, loopback only; Chromium with
//! `--allow-loopback-in-peer-connection`): `browser_channel` (the sleeper,
//! two connections from the connector exchanging 8 MiB with backpressure,
//! bad SDP, the web seed against a Blob URL), `browser_swarm` (two drivers
//! on the real connector with an in-page tracker stand-in, a byte-exact
//! download from peer to peer), `browser_api` (the `Client` and `Torrent`
//! objects through their JS names) and `browser_tracker` (two `Client`s
//! meeting through a real `chunkswarm-tracker`, which the script starts in
//! the namespace; the second gets every byte from the first). It then runs
//! `tests/run-stream-test.sh`: a page plays a WebM clip through the Service
//! Worker from a trickling web seed, must be playing before the download
//! completes, seeks, and compares the bytes. Natively, `cargo test -p
//! chunkswarm-wasm` tests the stores and the event model; and
//! `examples/tests/browser_storage` drives the demo page through a 1 GiB
//! download with a reload, a second page seeded from the first, and a quota
//! too small for the file.
//!
//! On targets other than wasm32 only the target-independent parts build
//! ([`store`] without OPFS, [`model`], [`peer_id`]), so the workspace builds
//! and tests natively.

pub mod model;
pub mod peer_id;
pub mod store;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(target_arch = "wasm32")]
pub use api::{Client, Torrent};
pub use chunkswarm_core::{layout, metainfo};
