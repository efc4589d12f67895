// The chunkswarm demo page: catalog search, then a download that plays while
// it arrives, with the piece map, the peers, the stats and the log.
//
// Hooks for tests and curious people: `window.chunkswarmDemo` (see `demo`
// below) and URL parameters: `?q=TEXT` fills the search, `?autoplay=FILE`
// starts the catalog entry whose file is FILE (muted, so browsers allow it),
// `?webseed=off` downloads from peers only, `?storage=memory` keeps pieces
// in memory instead of the browser's file system (OPFS), `?relay=1` connects
// to peers through the TURN relays the server hands out only.

import { Log, PeerTable, PieceMap, el, fmtBytes, peerLabel, renderResults, renderStats } from './view.js';
import { sha256Hex } from './sha256.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

/** What the page is doing, readable from outside (`window.chunkswarmDemo`). */
const demo = {
  ready: false,       // the wasm client is up
  error: null,        // a fatal error, as text
  started: false,     // a download started
  name: null,
  infoHash: null,
  length: null,
  pieceCount: null,
  streaming: false,   // the video streams through the Service Worker
  done: false,        // every piece verified
  sha256: null,       // hex SHA-256 of the downloaded file, once done
  stats: null,        // the latest Stats, a plain object
  peers: [],          // the latest peer list
  currentTimeBeforeDone: 0, // the furthest the video played before `done`
  playing: false,
  storage: null,      // the latest `storage` event: where pieces are kept, and why
  stored: null,       // what client.storage() listed last
  statsAtStart: null, // the torrent's Stats right after it was added (resumed pieces)
  addedAt: null,      // performance.now() when the torrent was added
  doneAt: null,       // performance.now() when its last piece was verified
  // wasmMemoryBytes: the wasm module's linear memory, once loaded
};
window.chunkswarmDemo = demo;
/** Resumes the torrent on screen (after its storage was full, say). */
window.chunkswarmResume = () => torrent.resume();
/** Stops streaming the torrent on screen: the download then goes on in the
 * torrent's order at full speed instead of following the playhead. */
window.chunkswarmStopStreaming = () => {
  currentStream?.stop();
  currentStream = null;
  demo.streaming = false;
};

const log = new Log($('log'), $('log-debug'));
const pieceMap = new PieceMap($('grid'));
const peerTable = new PeerTable($('peers'), $('peers-empty'), $('peer-count'));
const video = $('video');

let wasm = null;      // the package module
let stream = null;    // the streaming helper module, if it loaded
let client = null;
let torrent = null;   // the torrent on screen
let lastResults = [];
let paused = false;
let currentStream = null; // what streamTo returned for the torrent on screen

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status-text').textContent = text;
}

function fail(message, error) {
  const detail = error ? `${message}: ${error.message || error}` : message;
  demo.error = detail;
  setStatus('error', message);
  log.add('error', detail);
  console.error(detail, error);
}

const STATS_KEYS = ['totalBytes', 'verifiedBytes', 'piecesVerified', 'piecesTotal', 'p2pBytes', 'httpBytes',
  'httpBytesReceived', 'wastedBytes', 'uploadedBytes', 'p2pRate', 'httpRate', 'uploadRate', 'peers', 'banned', 'hashFailures'];
const PEER_KEYS = ['key', 'peerId', 'pieces', 'isSeed', 'amChoking', 'amInterested', 'peerChoking', 'peerInterested',
  'requestsOut', 'requestsIn', 'playhead', 'downloaded', 'uploaded', 'downloadRate', 'uploadRate'];

/** A plain copy (wasm objects may be classes or Maps, which JSON would lose). */
function plain(value, keys) {
  const out = {};
  for (const key of keys) {
    let v = value instanceof Map ? value.get(key) : value?.[key];
    if (typeof v === 'bigint') v = Number(v);
    out[key] = v;
  }
  return out;
}

async function start() {
  try {
    wasm = await import('/pkg/chunkswarm_wasm.js');
    const exports = await wasm.default();
    // For the storage benchmark's memory breakdown: the engine's linear memory.
    Object.defineProperty(demo, 'wasmMemoryBytes', { enumerable: true, get: () => exports.memory.buffer.byteLength });
  } catch (e) {
    fail('the wasm package did not load (the server builds it; see its log)', e);
    return;
  }
  try {
    stream = await import('/pkg/stream.js');
  } catch (e) {
    log.add('warn', `no streaming helper (${e.message}); videos play once downloaded`);
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  try {
    client = new wasm.Client({
      trackerUrl: `${scheme}://${location.host}/announce`,
      // ICE servers: those the server hands out (`server --turn-url ...`), if any.
      iceTransportPolicy: params.get('relay') === '1' ? 'relay' : 'all',
      storage: params.get('storage') || 'auto',
    });
  } catch (e) {
    fail('cannot start the client', e);
    return;
  }
  client.onEvent(onClientEvent);
  $('peer-id').textContent = `peer ${peerLabel(client.peerId)}`;
  $('peer-id').title = `this page's peer id: ${client.peerId}`;
  demo.ready = true;
  setStatus('ready', 'ready');
  log.add('info', `client ready, peer id ${client.peerId}`);

  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('search-input').value.trim();
    if (/^magnet:/i.test(text)) openMagnet(text);
    else search(text);
  });
  $('pause').addEventListener('click', togglePause);
  video.addEventListener('timeupdate', onTimeUpdate);
  video.addEventListener('playing', () => { demo.playing = true; });
  video.addEventListener('pause', () => { demo.playing = false; });
  video.addEventListener('error', () => {
    const err = video.error;
    if (err) log.add('warn', `video: ${err.message || `media error ${err.code}`}`);
  });

  await showStorage();
  const query = params.get('q') ?? '';
  $('search-input').value = query;
  await search(query);
  const auto = params.get('autoplay');
  if (auto) {
    const entry = lastResults.find((r) => r.file === auto || r.title === auto);
    if (entry) await download(entry, { muted: true });
    else fail(`autoplay: no catalog entry ${JSON.stringify(auto)}`);
  }
}

async function search(query) {
  try {
    const response = await fetch(`/api/search?q=${encodeURIComponent(query)}`);
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const body = await response.json();
    lastResults = body.results || [];
    renderResults($('results'), lastResults, demo.infoHash, (entry) => download(entry, { muted: false }));
  } catch (e) {
    log.add('error', `search failed: ${e.message}`);
  }
}

/** Downloads and plays a pasted magnet link (its .torrent from its `xs`, else its metadata from peers). */
function openMagnet(link) {
  let name = 'magnet link';
  try {
    name = new URLSearchParams(link.slice(link.indexOf('?') + 1)).get('dn') || name;
  } catch { /* the client reports a malformed link */ }
  download({ title: name, file: name, torrent_url: link }, { muted: false });
}

async function download(entry, { muted }) {
  if (torrent && entry.info_hash && entry.info_hash === demo.infoHash) return;
  $('session').hidden = false;
  $('now-title').textContent = entry.title;
  log.add('info', `fetching the torrent of ${entry.file}`);
  let added;
  try {
    added = await client.addTorrent(entry.torrent_url, params.get('webseed') === 'off' ? { webSeed: false } : {});
  } catch (e) {
    fail(`cannot add ${entry.file}`, e);
    return;
  }
  torrent = added;
  Object.assign(demo, {
    started: true, done: false, sha256: null, stats: null, currentTimeBeforeDone: 0,
    addedAt: performance.now(), doneAt: null,
    name: torrent.name, infoHash: torrent.infoHash, length: Number(torrent.length), pieceCount: torrent.pieceCount,
  });
  try {
    demo.statsAtStart = plain(await torrent.stats(), STATS_KEYS);
  } catch (e) {
    log.add('debug', `stats: ${e.message}`);
  }
  log.add('info', `${torrent.name}: ${fmtBytes(torrent.length)} in ${torrent.pieceCount} pieces of ${fmtBytes(torrent.pieceLength)}, infohash ${torrent.infoHash}`);
  pieceMap.reset(torrent.pieceCount);
  $('grid-count').textContent = `${torrent.pieceCount} × ${fmtBytes(torrent.pieceLength)}`;
  $('save').hidden = true;
  renderResults($('results'), lastResults, demo.infoHash, (e) => download(e, { muted: false }));
  torrent.onEvent(onTorrentEvent);
  watchPlayback(torrent);
  document.title = `${torrent.name} · chunkswarm`;
  refresh(torrent);
  await play(torrent, muted);
}

/** Logs where the streaming helper moves the engine's playback window. */
function watchPlayback(t) {
  const setPlayback = t.setPlayback.bind(t);
  let lastPiece = -1;
  t.setPlayback = (bytePos, bytesPerSec) => {
    const piece = Math.floor(Number(bytePos) / Number(t.pieceLength));
    if (piece !== lastPiece) {
      lastPiece = piece;
      log.add('debug', `playback window at piece ${piece} (byte ${bytePos}, ${fmtBytes(bytesPerSec)}/s)`);
    }
    return setPlayback(bytePos, bytesPerSec);
  };
}

/** Starts the video: streamed through the Service Worker when possible. */
async function play(t, muted) {
  video.muted = muted;
  demo.streaming = false;
  currentStream?.stop();
  currentStream = null;
  const note = $('stream-note');
  if (stream?.streamTo) {
    try {
      // Without Service Workers the page itself plays the file once done.
      currentStream = await stream.streamTo(t, video, { swUrl: '/pkg/chunkswarm-sw.js', scope: '/', fallback: false });
      demo.streaming = true;
      note.textContent = 'Streaming: the player reads verified pieces as they arrive; seeking moves the download window.';
      note.className = 'note';
    } catch (e) {
      log.add('warn', `streaming unavailable (${e.message}); the video plays once the download completes`);
      note.textContent = 'Streaming needs a Service Worker (https:// or localhost); the video plays once the download completes.';
      note.className = 'note warn';
    }
  } else {
    note.textContent = 'The video plays once the download completes.';
    note.className = 'note warn';
  }
  if (demo.streaming) await startPlayback();
}

async function startPlayback() {
  try {
    await video.play();
  } catch (e) {
    if (!video.muted && e.name === 'NotAllowedError') {
      video.muted = true;
      log.add('info', 'the browser allows only muted autoplay: unmute in the player');
      try { await video.play(); } catch (e2) { log.add('warn', `cannot start the video: ${e2.message}`); }
    } else {
      log.add('warn', `cannot start the video: ${e.message}`);
    }
  }
}

function onTimeUpdate() {
  if (!torrent) return;
  if (!demo.done) demo.currentTimeBeforeDone = Math.max(demo.currentTimeBeforeDone, video.currentTime);
  const duration = video.duration;
  if (Number.isFinite(duration) && duration > 0) {
    const length = Number(torrent.length);
    const pos = Math.min(length - 1, Math.floor((video.currentTime / duration) * length));
    pieceMap.setPlayhead(Math.floor(pos / Number(torrent.pieceLength)));
  }
}

function onClientEvent(ev) {
  // Sent while the torrent is being added, before its own listeners exist.
  if (ev.type === 'storage') {
    demo.storage = { ...ev };
    showStorage();
  }
  if (ev.type === 'log' && !ev.infoHash) log.add(ev.level, ev.message);
  else if (!torrent || ev.infoHash !== torrent.infoHash) logEvent(ev);
}

function onTorrentEvent(ev) {
  logEvent(ev);
  switch (ev.type) {
    case 'peer':
      peerTable.event(ev);
      break;
    case 'progress':
      if (ev.stats) showStats(ev.stats);
      break;
    case 'done':
      finished(torrent);
      break;
    default:
  }
}

/** The storage card: where this torrent's pieces are, and what the origin stores. */
async function showStorage() {
  const where = $('storage-where');
  const s = demo.storage;
  if (s) {
    const place = s.store === 'opfs' ? 'on disk (the browser\'s file system, OPFS)' : 'in memory';
    const resumed = s.resumedPieces ? `; ${s.resumedPieces} pieces (${fmtBytes(s.resumedBytes)}) found stored and verified again` : '';
    where.textContent = `Pieces are kept ${place}${resumed}${s.reason ? ` (${s.reason})` : ''}.`;
    where.className = s.state === 'ready' ? 'note' : 'note warn';
  }
  let info;
  try {
    info = await client.storage();
  } catch (e) {
    log.add('debug', `storage listing: ${e.message}`);
    return;
  }
  demo.stored = info;
  $('storage-quota').textContent = info.available
    ? `${fmtBytes(info.usage ?? 0)} used of ${fmtBytes(info.quota ?? 0)}`
    : `unavailable: ${info.reason}`;
  const list = $('stored');
  list.replaceChildren(...info.torrents.map((t) => {
    const remove = el('button', { type: 'button', class: 'ghost small' }, 'Remove');
    remove.addEventListener('click', async () => {
      remove.disabled = true;
      try {
        await client.removeStored(t.infoHash);
        log.add('info', `removed ${t.name ?? t.infoHash} from storage`);
        if (torrent && torrent.infoHash === t.infoHash) {
          torrent = null;
          demo.started = false;
        }
      } catch (e) {
        log.add('warn', e.message);
      }
      showStorage();
    });
    const pct = t.length ? Math.round((t.storedBytes / t.length) * 100) : 0;
    return el('li', {},
      el('span', { class: 'stored-name' }, t.name ?? t.infoHash),
      el('small', {}, `${fmtBytes(t.storedBytes)} of ${fmtBytes(t.length ?? 0)} (${pct}%)${t.openHere ? ' · open here' : ''}`),
      remove);
  }));
  $('stored-empty').hidden = info.torrents.length > 0;
}

function logEvent(ev) {
  switch (ev.type) {
    case 'log':
      log.add(ev.level, ev.message);
      break;
    case 'piece':
      if (ev.state === 'verified') {
        const from = ev.source === 'http' ? 'the origin' : `peer ${labelOf(ev.peer)}`;
        log.add(ev.source === 'http' ? 'info' : 'success', `piece ${ev.piece} verified, from ${from}`);
      } else {
        log.add('debug', `piece ${ev.piece} ${ev.state}${ev.source ? ` (${ev.source})` : ''}`);
      }
      break;
    case 'peer': {
      const level = ev.state === 'banned' ? 'error' : ev.state === 'connected' ? 'success'
        : ev.state === 'failed' ? 'warn' : 'info';
      const why = ev.reason ? `: ${ev.reason}` : '';
      log.add(level, `peer ${ev.peerId ? peerLabel(ev.peerId) : labelOf(ev.peer)} ${ev.state}${why}`);
      break;
    }
    case 'hashFailed':
      log.add('warn', `piece ${ev.piece} failed its hash check and is fetched again`);
      break;
    case 'httpFailed':
      log.add('warn', `origin fetch of piece ${ev.piece} failed: ${ev.error}`);
      break;
    case 'done':
      log.add('success', 'every piece verified');
      break;
    case 'storage':
      log.add(ev.state === 'ready' ? 'info' : 'warn', `storage: ${ev.store} ${ev.state}${ev.reason ? `: ${ev.reason}` : ''}`);
      break;
    default:
  }
}

/** A readable name for a connection key. */
function labelOf(key) {
  const id = peerTable.peerIdOf(key);
  return id ? peerLabel(id) : `#${key}`;
}

function showStats(stats) {
  demo.stats = plain(stats, STATS_KEYS);
  renderStats(demo.stats);
  if (!demo.done && demo.stats.piecesTotal > 0 && demo.stats.piecesVerified === demo.stats.piecesTotal) {
    finished(torrent);
  }
}

/** Polls what events do not carry: piece states, peers, stats. */
async function refresh(t) {
  let tick = 0;
  while (t === torrent) {
    try {
      pieceMap.update(t.pieceStates());
      if (tick % 2 === 0) showStats(await t.stats());
      if (tick % 4 === 0) {
        const peers = (await t.peers()).map((p) => plain(p, PEER_KEYS));
        demo.peers = peers;
        peerTable.update(peers, t.pieceCount);
      }
    } catch (e) {
      log.add('debug', `refresh: ${e.message}`);
    }
    tick++;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

let finishing = null;
function finished(t) {
  if (t !== torrent || finishing) return;
  finishing = (async () => {
    demo.done = true;
    demo.doneAt = performance.now();
    // On OPFS a File read from disk as it is used, whatever its size.
    const file = await t.file(mimeOf(t.name));
    const url = URL.createObjectURL(file);
    const save = $('save');
    save.href = url;
    save.download = t.name;
    save.hidden = false;
    if (!demo.streaming) {
      video.src = url;
      await startPlayback();
    }
    // The file's digest, for checking against the original, streamed from
    // the store so the file is never whole in memory.
    const started = performance.now();
    demo.sha256 = await sha256Hex(file.stream());
    log.add('success', `downloaded ${fmtBytes(file.size)}, SHA-256 ${demo.sha256} (hashed in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    showStats(await t.stats());
    showStorage();
    pieceMap.update(t.pieceStates());
  })().catch((e) => log.add('error', `finishing: ${e.message}`));
}

function mimeOf(name) {
  const ext = name.split('.').pop().toLowerCase();
  return { webm: 'video/webm', mp4: 'video/mp4', m4v: 'video/mp4', mkv: 'video/x-matroska', ogv: 'video/ogg', mp3: 'audio/mpeg', ogg: 'audio/ogg', opus: 'audio/ogg', m4a: 'audio/mp4' }[ext] || 'application/octet-stream';
}

function togglePause() {
  if (!torrent) return;
  paused = !paused;
  if (paused) torrent.pause();
  else torrent.resume().catch((e) => log.add('warn', e.message));
  $('pause').textContent = paused ? 'Resume' : 'Pause';
  log.add('info', paused ? 'download paused' : 'download resumed');
}

window.addEventListener('pagehide', () => client?.destroy());
start().catch((e) => fail('the demo failed', e));
