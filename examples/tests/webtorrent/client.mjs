// An unchanged WebTorrent client (npm `webtorrent`) in a chunkswarm swarm.
// Usage:
//   node client.mjs fetch <torrent file or magnet link> <out dir> <seconds>
//   node client.mjs seed <file> <announce url> <torrent file to write> <seconds>
// `fetch` prints one JSON line when the download is done (or the time is up):
// the SHA-256 of what it got and how many peers it met; `seed` writes the
// torrent it made (and its magnet link beside it, in `<torrent file>.magnet`)
// and seeds until the time is up, then prints what it uploaded.
// No DHT, no local discovery, no web seeds: only the tracker's WebRTC peers.
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import wrtc from '@roamhq/wrtc'
import WebTorrent from 'webtorrent'

const [, , mode, ...args] = process.argv
const client = new WebTorrent({ dht: false, lsd: false, utp: false, natUpnp: false, natPmp: false, webSeeds: false, tracker: { wrtc } })
const report = { mode, done: false, peers: 0, errors: [] }
client.on('error', (e) => report.errors.push(String(e.message || e)))

function finish (torrent) {
  report.uploaded = torrent.uploaded
  report.downloaded = torrent.downloaded
  console.log(JSON.stringify(report))
  client.destroy(() => process.exit(0))
}

if (mode === 'fetch') {
  const [torrentPath, outDir, seconds] = args
  // A magnet link (its metadata then comes from the peers) or a .torrent file.
  const source = torrentPath.startsWith('magnet:') ? torrentPath : readFileSync(torrentPath)
  const torrent = client.add(source, { path: outDir, private: false })
  torrent.on('wire', () => { report.peers++ })
  torrent.on('done', () => {
    report.done = true
    const file = torrent.files[0]
    report.sha256 = createHash('sha256').update(readFileSync(join(outDir, file.path))).digest('hex')
    finish(torrent)
  })
  setTimeout(() => finish(torrent), Number(seconds) * 1000)
} else if (mode === 'seed') {
  const [file, announce, torrentOut, seconds] = args
  client.seed(file, { announce: [announce], pieceLength: 256 * 1024 }, (torrent) => {
    writeFileSync(`${torrentOut}.magnet`, torrent.magnetURI)
    writeFileSync(torrentOut, torrent.torrentFile)
    torrent.on('wire', () => { report.peers++ })
    report.done = true
    setTimeout(() => finish(torrent), Number(seconds) * 1000)
  })
} else {
  console.error('usage: node client.mjs fetch|seed ...')
  process.exit(2)
}
