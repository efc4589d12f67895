// chunkswarm streaming Service Worker.
//
// Answers requests for `<scope>chunkswarm-stream/<infoHash>/<name>` with the
// torrent's bytes, which the page that owns the torrent reads with
// `torrent.read()` (see stream.js). The body is a stream pulled chunk by
// chunk, so a <video> starts playing as soon as its first bytes are
// verified, and a seek is simply a new range request. Every other request
// goes to the network untouched.
//
// Protocol with the page, over a MessageChannel per response:
//   worker -> page (client.postMessage): { chunkswarm: 'open', infoHash } + port
//   page -> worker: { ok: true, length, pieceLength, type } | { ok: false, error }
//   worker -> page: { read: [start, end] }   page -> worker: { data: Uint8Array } | { error }
//   worker -> page: { close: true } when the response is cancelled or done.

const PREFIX = '/chunkswarm-stream/';
/** Largest chunk asked of the page at once; reads also stop at piece ends,
 * so each one resolves as soon as its piece is verified. */
const CHUNK = 1 << 20;
/** How long the page may take to say whether it has the torrent. */
const OPEN_TIMEOUT_MS = 5000;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
// A page loaded before the worker took over asks to be claimed (stream.js).
self.addEventListener('message', (event) => {
  if (event.data && event.data.chunkswarm === 'claim') event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return;
  const at = url.pathname.indexOf(PREFIX);
  if (at < 0) return;
  const infoHash = url.pathname.slice(at + PREFIX.length).split('/')[0].toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(infoHash)) return;
  event.respondWith(serve(event, infoHash));
});

/** Asks one page over a fresh port whether it streams `infoHash`. */
function ask(client, infoHash) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => {
      channel.port1.close();
      resolve(null);
    }, OPEN_TIMEOUT_MS);
    channel.port1.onmessage = ({ data }) => {
      clearTimeout(timer);
      if (data && data.ok) {
        resolve({ port: channel.port1, length: data.length, pieceLength: data.pieceLength, type: data.type });
      } else {
        channel.port1.close();
        resolve(null);
      }
    };
    client.postMessage({ chunkswarm: 'open', infoHash }, [channel.port2]);
  });
}

/** The page owning the torrent: the requesting page first, then any other. */
async function open(event, infoHash) {
  const candidates = [];
  if (event.clientId) {
    const own = await self.clients.get(event.clientId);
    if (own) candidates.push(own);
  }
  for (const client of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) {
    if (!candidates.some((c) => c.id === client.id)) candidates.push(client);
  }
  for (const client of candidates) {
    const source = await ask(client, infoHash);
    if (source) return source;
  }
  return null;
}

/** Parses a Range header against `length`: [start, end] inclusive, null for none, 'bad' if unsatisfiable. */
function parseRange(header, length) {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'bad';
  let start;
  let end;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'bad';
    start = Math.max(0, length - suffix);
    end = length - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? length - 1 : Math.min(Number(match[2]), length - 1);
  }
  if (!Number.isSafeInteger(start) || start >= length || end < start) return 'bad';
  return [start, end];
}

/** One read of [start, end) from the page. */
function read(port, start, end) {
  return new Promise((resolve, reject) => {
    port.onmessage = ({ data }) => {
      if (data && data.data instanceof Uint8Array) resolve(data.data);
      else reject(new Error((data && data.error) || 'bad answer from the page'));
    };
    port.postMessage({ read: [start, end] });
  });
}

async function serve(event, infoHash) {
  const source = await open(event, infoHash);
  if (!source) {
    return new Response('no open page streams this torrent', { status: 404 });
  }
  const { port, length } = source;
  const pieceLength = source.pieceLength > 0 ? source.pieceLength : CHUNK;
  const range = parseRange(event.request.headers.get('Range'), length);
  if (range === 'bad') {
    port.postMessage({ close: true });
    return new Response(null, {
      status: 416,
      headers: { 'Content-Range': `bytes */${length}` },
    });
  }
  const [first, last] = range || [0, length - 1];
  let position = first;
  const body = new ReadableStream({
    async pull(controller) {
      if (position > last) {
        port.postMessage({ close: true });
        controller.close();
        return;
      }
      const pieceEnd = (Math.floor(position / pieceLength) + 1) * pieceLength;
      const end = Math.min(last + 1, position + CHUNK, pieceEnd);
      try {
        const bytes = await read(port, position, end);
        if (bytes.length === 0) throw new Error('empty read');
        position += bytes.length;
        controller.enqueue(bytes);
      } catch (error) {
        port.postMessage({ close: true });
        controller.error(error);
      }
    },
    cancel() {
      port.postMessage({ close: true });
    },
  });
  const headers = {
    'Content-Type': source.type || 'application/octet-stream',
    'Content-Length': String(last - first + 1),
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-store',
  };
  if (range) {
    headers['Content-Range'] = `bytes ${first}-${last}/${length}`;
    return new Response(body, { status: 206, headers });
  }
  return new Response(body, { status: 200, headers });
}
