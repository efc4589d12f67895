// Rendering for the demo page: formatting, the piece grid, the peer table,
// the log and the stats. No engine calls here: demo.js feeds these.

const $ = (id) => document.getElementById(id);

/** `el('td', {class: 'num'}, 'text', child)`: a new element. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'style') node.style.cssText = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function fmtBytes(n) {
  n = Number(n) || 0;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

export function fmtRate(n) {
  return `${fmtBytes(n)}/s`;
}

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** A short, readable name for a peer id (a 40-digit hex string or raw text). */
export function peerLabel(peerId) {
  if (!peerId) return '?';
  const text = String(peerId);
  let bytes = null;
  if (/^[0-9a-f]{40}$/i.test(text)) {
    bytes = text.match(/../g).map((h) => parseInt(h, 16));
  } else if (text.length === 20) {
    bytes = Array.from(text, (c) => c.charCodeAt(0));
  }
  if (!bytes) return text.slice(0, 12);
  // Azureus style: -XX1234- then random bytes.
  const head = String.fromCharCode(...bytes.slice(0, 8));
  const tail = bytes.slice(-3).map((b) => b.toString(16).padStart(2, '0')).join('');
  if (/^-[A-Za-z]{2}[0-9A-Za-z]{4}-$/.test(head)) {
    const client = { CS: 'cs', WW: 'webtorrent', WD: 'webtorrent' }[head.slice(1, 3)] || head.slice(1, 3);
    return `${client} ·${tail}`;
  }
  return bytes.slice(0, 6).map((b) => b.toString(16).padStart(2, '0')).join('');
}

const STATE_NAMES = ['missing', 'requested from a peer', 'requested from the origin', 'verified, from a peer', 'verified, from the origin'];

/** Cell size and gap in CSS pixels, by how many cells there are. */
function cellGeometry(cellCount) {
  if (cellCount <= 300) return { size: 22, gap: 4, radius: 4 };
  if (cellCount <= 2000) return { size: 12, gap: 2, radius: 2 };
  return { size: 6, gap: 1, radius: 0 };
}

/**
 * The piece map: one cell per piece, coloured by state and source, drawn on
 * a canvas. (One element per piece made Blink lay out thousands of grid
 * items on every update: for a 4 GiB file that was most of the page's
 * memory.) Very large files get at most `MAX_CELLS` cells, each standing for
 * a run of pieces and showing its least advanced one.
 */
export class PieceMap {
  static MAX_CELLS = 6000;

  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext('2d');
    this.cellStates = new Uint8Array(0);
    this.perCell = 1;
    this.pieceCount = 0;
    this.playhead = -1;
    this.layout = null;
    new ResizeObserver(() => this.redraw()).observe(canvas);
    canvas.addEventListener('mousemove', (e) => this.describe(e));
  }

  reset(pieceCount) {
    this.pieceCount = pieceCount;
    this.perCell = Math.max(1, Math.ceil(pieceCount / PieceMap.MAX_CELLS));
    this.cellStates = new Uint8Array(Math.ceil(pieceCount / this.perCell));
    this.playhead = -1;
    this.redraw();
  }

  /** `states`: one byte per piece (0 missing, 1/2 requested from peer/origin, 3/4 verified from peer/origin). */
  update(states) {
    const per = this.perCell;
    for (let c = 0; c < this.cellStates.length; c++) {
      let s = 255;
      const end = Math.min((c + 1) * per, states.length);
      for (let p = c * per; p < end; p++) s = Math.min(s, states[p]);
      if (s === 255) s = 0;
      if (s !== this.cellStates[c]) {
        this.cellStates[c] = s;
        this.drawCell(c);
      }
    }
  }

  /** Marks the cell holding piece `piece` (or none with -1). */
  setPlayhead(piece) {
    const cell = piece < 0 ? -1 : Math.floor(piece / this.perCell);
    if (cell === this.playhead) return;
    const old = this.playhead;
    this.playhead = cell;
    // The outline reaches into the gap: redraw the neighbours it touched.
    for (const c of [old - 1, old, old + 1, cell]) this.drawCell(c);
    if (old >= 0) {
      const columns = this.layout?.columns ?? 1;
      for (const c of [old - columns, old + columns]) this.drawCell(c);
    }
  }

  /** Sizes the canvas to its box and draws every cell. */
  redraw() {
    const { canvas } = this;
    const width = canvas.clientWidth;
    if (!width) return;
    const { size, gap, radius } = cellGeometry(this.cellStates.length);
    const columns = Math.max(1, Math.floor((width + gap) / (size + gap)));
    // Stretch the cells to fill the row, as the grid's `1fr` columns did.
    const cell = (width + gap) / columns - gap;
    const rows = Math.ceil(this.cellStates.length / columns);
    const height = Math.max(0, Math.ceil(rows * (cell + gap) - gap));
    const ratio = window.devicePixelRatio || 1;
    canvas.style.height = `${height}px`;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    const style = getComputedStyle(canvas);
    const color = (name) => style.getPropertyValue(name).trim();
    this.layout = {
      columns, cell, gap, radius,
      colors: [color('--missing'), color('--requested'), color('--http'), color('--peer'), color('--http')],
      background: color('--card'),
    };
    for (let c = 0; c < this.cellStates.length; c++) this.drawCell(c);
  }

  drawCell(c) {
    const { layout, context: ctx } = this;
    if (!layout || c < 0 || c >= this.cellStates.length) return;
    const { columns, cell, gap, radius, colors } = layout;
    const x = (c % columns) * (cell + gap);
    const y = Math.floor(c / columns) * (cell + gap);
    const half = gap / 2;
    ctx.fillStyle = layout.background;
    ctx.fillRect(x - half, y - half, cell + gap, cell + gap);
    const s = this.cellStates[c];
    const shape = () => {
      ctx.beginPath();
      if (radius && ctx.roundRect) ctx.roundRect(x, y, cell, cell, radius);
      else ctx.rect(x, y, cell, cell);
    };
    ctx.fillStyle = colors[s] ?? colors[0];
    shape();
    ctx.fill();
    if (s === 2) {
      // Requested from the origin: half requested, half origin.
      ctx.save();
      shape();
      ctx.clip();
      ctx.beginPath();
      ctx.moveTo(x + cell, y);
      ctx.lineTo(x + cell, y + cell);
      ctx.lineTo(x, y + cell);
      ctx.fillStyle = colors[1];
      ctx.fill();
      ctx.restore();
    }
    if (c === this.playhead) {
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = Math.min(2, Math.max(1, gap));
      ctx.strokeRect(x - ctx.lineWidth / 2, y - ctx.lineWidth / 2, cell + ctx.lineWidth, cell + ctx.lineWidth);
    }
  }

  /** The tooltip: what the cell under the pointer holds. */
  describe(event) {
    const { layout } = this;
    if (!layout) return;
    const pitch = layout.cell + layout.gap;
    const column = Math.floor(event.offsetX / pitch);
    const c = Math.floor(event.offsetY / pitch) * layout.columns + column;
    if (column >= layout.columns || c < 0 || c >= this.cellStates.length) {
      this.canvas.title = '';
      return;
    }
    const per = this.perCell;
    const state = STATE_NAMES[this.cellStates[c]] || this.cellStates[c];
    this.canvas.title = per === 1
      ? `piece ${c}: ${state}`
      : `pieces ${c * per}–${Math.min(this.pieceCount, (c + 1) * per) - 1}: ${state}`;
  }
}

/** The peer table: live peers from `peers()`, plus ones that left or were banned. */
export class PeerTable {
  constructor(body, empty, count) {
    this.body = body;
    this.empty = empty;
    this.count = count;
    this.known = new Map(); // key -> {info, state, reason}
  }

  /** The peer id of a connection key, if known. */
  peerIdOf(key) {
    return this.known.get(String(key))?.peerId ?? null;
  }

  event(ev) {
    // A connection that failed to open has no key (-1): one row per remote peer.
    const key = ev.state === 'failed' ? String(ev.peerId) : String(ev.peer ?? ev.peerId);
    const entry = this.known.get(key) || { info: null };
    entry.state = ev.state;
    entry.reason = ev.reason || null;
    entry.peerId = ev.peerId ?? entry.peerId;
    this.known.set(key, entry);
  }

  update(peers, pieceCount) {
    const live = new Set();
    for (const info of peers) {
      const key = String(info.key);
      live.add(key);
      const entry = this.known.get(key) || {};
      entry.info = info;
      entry.peerId = info.peerId ?? entry.peerId;
      if (entry.state !== 'banned') entry.state = 'connected';
      this.known.set(key, entry);
    }
    for (const [key, entry] of this.known) {
      if (!live.has(key) && entry.state === 'connected') entry.state = 'disconnected';
    }
    const rows = [...this.known.entries()].sort(([, a], [, b]) => rank(a) - rank(b));
    this.body.replaceChildren(...rows.map(([key, entry]) => row(key, entry, pieceCount)));
    const connected = rows.filter(([, e]) => e.state === 'connected').length;
    this.count.textContent = rows.length ? `${connected} connected` : '';
    this.empty.hidden = rows.length > 0;
    this.body.closest('.table-wrap').hidden = rows.length === 0;
  }
}

function rank(entry) {
  return { connected: 0, disconnected: 1, banned: 2, failed: 3 }[entry.state] ?? 4;
}

function row(key, entry, pieceCount) {
  const info = entry.info || {};
  const pieces = Number(info.pieces) || 0;
  const share = pieceCount ? Math.min(100, (pieces / pieceCount) * 100) : 0;
  // BEP 3 state, compactly: who chokes whom, who wants what.
  const flow = [
    info.peerChoking === false ? 'unchoked us' : 'chokes us',
    info.amChoking === false ? 'we unchoke' : 'we choke',
  ];
  if (info.amInterested) flow.push('we want');
  if (info.peerInterested) flow.push('it wants');
  if (info.requestsOut) flow.push(`${info.requestsOut} req`);
  if (info.requestsIn) flow.push(`${info.requestsIn} asked of us`);
  if (typeof info.playhead === 'number') flow.push(`plays at ${fmtBytes(info.playhead)}`);
  const reason = entry.reason ? ` (${entry.reason})` : '';
  return el('tr', { class: entry.state !== 'connected' ? 'gone' : null },
    el('td', {}, el('div', { class: 'who' },
      el('span', { class: 'mono', title: entry.peerId || key }, peerLabel(entry.peerId), info.isSeed ? el('span', { class: 'seed' }, 'seed') : null),
      el('small', { class: 'mono' }, `#${key}`))),
    el('td', { class: 'chan-cell' },
      el('span', { class: `chan ${entry.state}`, title: `${entry.state}${reason}` }, entry.state === 'connected' ? 'open' : entry.state),
      entry.state === 'connected' ? el('span', { class: 'flow' }, flow.join(' · ')) : el('span', { class: 'flow' }, entry.reason || '')),
    el('td', { title: `${pieces} of ${pieceCount} pieces` }, el('span', { class: 'has' }, el('i', { style: `width:${share.toFixed(1)}%` }))),
    el('td', { class: 'num' }, fmtBytes(info.downloaded), el('br'), el('small', {}, fmtRate(info.downloadRate))),
    el('td', { class: 'num' }, fmtBytes(info.uploaded), el('br'), el('small', {}, fmtRate(info.uploadRate))),
  );
}

/** The colour-coded log, newest at the bottom, bounded. Debug lines are
 * kept aside and shown only while the debug box is ticked, so a download of
 * thousands of pieces does not churn the page with hidden lines. */
export class Log {
  constructor(list, debugToggle) {
    this.list = list;
    this.max = 500;
    this.debug = [];
    this.seq = 0;
    this.showDebug = debugToggle.checked;
    debugToggle.addEventListener('change', () => {
      this.showDebug = debugToggle.checked;
      this.list.classList.toggle('show-debug', this.showDebug);
      if (this.showDebug) this.render();
    });
  }

  line(level, message) {
    const now = new Date();
    const stamp = `${String(now.getMinutes()).padStart(2, '0')}:${String(now.getSeconds()).padStart(2, '0')}.${String(now.getMilliseconds()).padStart(3, '0')}`;
    const li = el('li', { class: level }, el('time', {}, stamp), message);
    li.dataset.seq = String(++this.seq);
    return li;
  }

  add(level, message) {
    if (level === 'debug' && !this.showDebug) {
      this.debug.push(this.line(level, message));
      if (this.debug.length > this.max) this.debug.shift();
      return;
    }
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 24;
    this.list.append(this.line(level, message));
    while (this.list.childElementCount > this.max) this.list.firstElementChild.remove();
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  /** Merges the debug lines kept aside into the list, in time order. */
  render() {
    const lines = [...this.list.children, ...this.debug];
    lines.sort((a, b) => Number(a.dataset.seq) - Number(b.dataset.seq));
    this.debug = [];
    this.list.replaceChildren(...lines.slice(-this.max));
    this.list.scrollTop = this.list.scrollHeight;
  }
}

/** Fills the stats card and the progress bar. */
export function renderStats(s) {
  const total = Number(s.totalBytes) || 0;
  const verified = Number(s.verifiedBytes) || 0;
  const p2p = Number(s.p2pBytes) || 0;
  const http = Number(s.httpBytes) || 0;
  const pct = total ? (verified / total) * 100 : 0;
  $('st-progress').textContent = `${pct >= 99.95 || pct === 0 ? Math.round(pct) : pct.toFixed(1)}%`;
  $('st-progress-bytes').textContent = `${fmtBytes(verified)} of ${fmtBytes(total)} · ${s.piecesVerified}/${s.piecesTotal}`;
  const fetched = p2p + http;
  $('st-p2p-share').textContent = fetched ? `${Math.round((p2p / fetched) * 100)}%` : '–';
  $('st-p2p-bytes').textContent = fmtBytes(p2p);
  $('st-http').textContent = fmtBytes(http);
  const extra = Number(s.httpBytesReceived) - http;
  $('st-http-extra').textContent = extra > 0 ? `+${fmtBytes(extra)} unused` : 'verified bytes';
  $('st-p2p-rate').textContent = fmtRate(s.p2pRate);
  $('st-http-rate').textContent = fmtRate(s.httpRate);
  $('st-up').textContent = fmtBytes(s.uploadedBytes);
  $('st-up-rate').textContent = fmtRate(s.uploadRate);
  $('st-peers').textContent = String(s.peers ?? 0);
  $('st-banned').textContent = s.banned ? `${s.banned} banned` : '';
  const failures = Number(s.hashFailures) || 0;
  const hash = $('st-hash');
  hash.textContent = failures ? `${failures} bad` : 'all good';
  hash.className = failures ? 'bad' : 'peer';
  $('st-wasted').textContent = Number(s.wastedBytes) ? `${fmtBytes(s.wastedBytes)} discarded` : 'SHA-1 per piece';
  // Progress bar: verified bytes split by source.
  const peerPart = total ? (Math.min(p2p, verified) / total) * 100 : 0;
  const httpPart = total ? (Math.min(http, Math.max(0, verified - p2p)) / total) * 100 : 0;
  $('bar-peer').style.width = `${peerPart}%`;
  $('bar-http').style.width = `${httpPart}%`;
}

/** The search results. `onPick(entry)` starts a download. */
/** A small link to a catalog entry's magnet link: a click copies it (where
 * the page may use the clipboard; elsewhere the browser opens the link). */
function magnetLink(magnet) {
  const link = el('a', { class: 'magnet', href: magnet, title: 'Copy the magnet link (open it in any torrent client, or paste it into the search)' }, 'magnet');
  link.addEventListener('click', (e) => {
    if (!navigator.clipboard) return;
    e.preventDefault();
    navigator.clipboard.writeText(magnet).then(
      () => { link.textContent = 'copied'; },
      () => { link.textContent = 'copy failed'; },
    ).finally(() => setTimeout(() => { link.textContent = 'magnet'; }, 1500));
  });
  return link;
}

export function renderResults(list, results, activeHash, onPick) {
  if (!results.length) {
    list.replaceChildren(el('li', { class: 'empty' }, 'Nothing found. Start the server with --media DIR to serve your own videos.'));
    return;
  }
  list.replaceChildren(...results.map((entry) => {
    const active = activeHash && entry.info_hash === activeHash;
    const sub = [];
    if (entry.year) sub.push(entry.year);
    if (entry.duration_seconds) sub.push(fmtDuration(entry.duration_seconds));
    if (entry.size) sub.push(fmtBytes(entry.size));
    const button = el('button', { type: 'button', 'data-file': entry.file || '' }, active ? 'Watching' : 'Download & play');
    button.disabled = !entry.torrent_url || active;
    button.addEventListener('click', () => onPick(entry));
    const peers = entry.peers ? el('span', { class: 'badge', title: `${entry.seeders || 0} with the whole file` }, `${entry.peers} peer${entry.peers === 1 ? '' : 's'}`) : null;
    return el('li', { class: `result${active ? ' active' : ''}` },
      el('div', { class: 'meta' },
        el('div', { class: 'title', title: entry.title }, entry.title),
        el('div', { class: 'sub' }, sub.join(' · '), peers),
        entry.description ? el('div', { class: 'desc' }, entry.description) : null),
      el('div', { class: 'actions' }, button, entry.magnet ? magnetLink(entry.magnet) : null));
  }));
}
