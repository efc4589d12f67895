// Streaming a chunkswarm torrent into a <video> (or <audio>) element.
//
//   import { streamTo } from './stream.js';
//   const stream = await streamTo(torrent, video, { swUrl: '/chunkswarm-sw.js', scope: '/' });
//   ...
//   stream.stop();
//
// A Service Worker (chunkswarm-sw.js) answers the element's byte-range
// requests; this module answers the worker with `torrent.read()` and keeps
// the engine's playback window (`torrent.setPlayback`) on the playhead:
// position = currentTime × bitrate, bitrate = length / duration once the
// duration is known. A read the playhead window does not cover (the
// element looking for an index at the end of the file, or a seek before
// the duration is known) moves the window to that read until it is served,
// unless the element is only buffering ahead while it plays.
//
// The page must be inside the worker's scope (serve the worker script from
// the page's directory, or send `Service-Worker-Allowed`), in a secure
// context (HTTPS or localhost). Without Service Worker support, the element
// gets the whole file as a Blob URL once the download completes.

/** Assumed bitrate (bytes/s) until the element knows the duration. */
const DEFAULT_BITRATE = 250000;
/** Seconds ahead of the playhead that count as inside the playback window. */
const WINDOW_SECONDS = 20;
/** `HTMLMediaElement.readyState`: data for the playhead and a little beyond. */
const HAVE_FUTURE_DATA = 3;
/** How long to wait for the worker to take control of the page. */
const CONTROL_TIMEOUT_MS = 10000;

/** infoHash → { torrent, type, onRead } of the streams of this page. */
const streams = new Map();
let listening = false;

const TYPES = {
  webm: 'video/webm', mkv: 'video/x-matroska', mp4: 'video/mp4', m4v: 'video/mp4',
  mov: 'video/quicktime', ogv: 'video/ogg', ogg: 'audio/ogg', oga: 'audio/ogg',
  mp3: 'audio/mpeg', m4a: 'audio/mp4', wav: 'audio/wav', flac: 'audio/flac', opus: 'audio/ogg',
};

/** A MIME type guessed from a file name. */
export function mimeType(name) {
  const ext = String(name).split('.').pop().toLowerCase();
  return TYPES[ext] || 'application/octet-stream';
}

function listen() {
  if (listening) return;
  listening = true;
  navigator.serviceWorker.addEventListener('message', (event) => {
    const message = event.data;
    const port = event.ports && event.ports[0];
    if (!message || message.chunkswarm !== 'open' || !port) return;
    const entry = streams.get(message.infoHash);
    if (!entry) {
      port.postMessage({ ok: false, error: 'unknown torrent' });
      port.close();
      return;
    }
    port.onmessage = ({ data }) => {
      if (!data) return;
      if (data.close) {
        port.close();
        return;
      }
      if (!Array.isArray(data.read)) return;
      const [start, end] = data.read;
      entry.onRead(start, end).then(
        (bytes) => port.postMessage({ data: bytes }, [bytes.buffer]),
        (error) => port.postMessage({ error: String(error && error.message ? error.message : error) }),
      );
    };
    port.postMessage({
      ok: true, length: entry.torrent.length, pieceLength: entry.torrent.pieceLength, type: entry.type,
    });
  });
  navigator.serviceWorker.startMessages();
}

async function controlled(registration) {
  await navigator.serviceWorker.ready;
  if (navigator.serviceWorker.controller) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(!!navigator.serviceWorker.controller), CONTROL_TIMEOUT_MS);
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      clearTimeout(timer);
      resolve(true);
    }, { once: true });
    if (registration.active) registration.active.postMessage({ chunkswarm: 'claim' });
  });
}

/**
 * Plays `torrent` in `media` while it downloads.
 * @param {import('./chunkswarm_wasm.js').Torrent} torrent
 * @param {HTMLMediaElement} media
 * @param {{ swUrl?: string, scope?: string, type?: string, fallback?: boolean }} [options]
 *   swUrl: the worker script (default: chunkswarm-sw.js next to this module);
 *   scope: its scope (default: the script's directory);
 *   type: the Content-Type (default: from the torrent's name);
 *   fallback: without Service Workers, play from a Blob once complete (default true).
 * @returns {Promise<{ url: string, stop(): void }>}
 */
export async function streamTo(torrent, media, options = {}) {
  const type = options.type || mimeType(torrent.name);
  if (!('serviceWorker' in navigator)) {
    if (options.fallback === false) throw new Error('Service Workers are not available here');
    const blob = await torrent.blob(type);
    const url = URL.createObjectURL(blob);
    media.src = url;
    return { url, stop() { URL.revokeObjectURL(url); } };
  }
  const swUrl = options.swUrl || new URL('./chunkswarm-sw.js', import.meta.url).href;
  const registration = await navigator.serviceWorker.register(
    swUrl, options.scope ? { scope: options.scope } : undefined);
  listen();
  if (!(await controlled(registration))) {
    throw new Error(`the page is not controlled by the Service Worker: is ${location.pathname} inside its scope ${registration.scope}?`);
  }

  const pieceLength = torrent.pieceLength;
  const bitrate = () => {
    const d = media.duration;
    return Number.isFinite(d) && d > 0 ? torrent.length / d : 0;
  };
  const playhead = () => Math.min(torrent.length - 1, Math.floor(media.currentTime * bitrate()));
  let detour = 0; // reads in flight that moved the window away from the playhead
  let unplayable = false; // the element gave up on the file (it cannot decode it)
  let stopped = false; // stop() was called: the playback window is no longer ours
  const follow = () => {
    if (unplayable || stopped) return;
    const rate = bitrate();
    if (rate > 0 && detour === 0 && torrent.length > 0) torrent.setPlayback(playhead(), Math.ceil(rate));
  };
  const verified = (start, end) => {
    const states = torrent.pieceStates();
    for (let p = Math.floor(start / pieceLength); p * pieceLength < end; p++) {
      if (states[p] < 3) return false;
    }
    return true;
  };
  const onRead = async (start, end) => {
    if (unplayable || stopped || verified(start, end)) return torrent.read(start, end);
    const rate = bitrate();
    const head = rate > 0 ? playhead() : null;
    // A read before the playhead's piece (the player re-reading after a
    // seek) is outside: the window must move back to it, or that piece
    // would come last.
    const ahead = head !== null && Math.floor(start / pieceLength) >= Math.floor(head / pieceLength);
    const inWindow = ahead && start <= head + rate * WINDOW_SECONDS;
    // Further ahead while the element has data to play on is buffering: the
    // read waits for the window to reach it. Moving the window there would
    // make those pieces look due now, and the origin would be paid for what
    // peers deliver long before playback needs it.
    const buffering = ahead && !media.seeking && media.readyState >= HAVE_FUTURE_DATA;
    if (inWindow || buffering) return torrent.read(start, end);
    detour += 1;
    torrent.setPlayback(start, Math.ceil(rate || DEFAULT_BITRATE));
    try {
      return await torrent.read(start, end);
    } finally {
      detour -= 1;
      follow();
    }
  };
  streams.set(torrent.infoHash, { torrent, type, onRead });

  const events = ['loadedmetadata', 'durationchange', 'seeking', 'timeupdate', 'play'];
  events.forEach((name) => media.addEventListener(name, follow));
  // A file the element cannot play has no playhead to follow: the download
  // then goes on in the torrent's order instead of waiting on a window
  // (reads the worker still makes must not move one back either).
  const onError = () => {
    unplayable = true;
    torrent.clearPlayback();
  };
  media.addEventListener('error', onError);
  const url = new URL(`chunkswarm-stream/${torrent.infoHash}/${encodeURIComponent(torrent.name)}`,
    registration.scope).href;
  media.src = url;
  return {
    url,
    stop() {
      // Reads still pending finish without moving the window back.
      stopped = true;
      events.forEach((name) => media.removeEventListener(name, follow));
      media.removeEventListener('error', onError);
      streams.delete(torrent.infoHash);
      torrent.clearPlayback();
    },
  };
}
