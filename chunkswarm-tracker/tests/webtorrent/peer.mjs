// One WebTorrent tracker client (npm `bittorrent-tracker`, the library the
// WebTorrent client uses) announcing to a chunkswarm tracker, unchanged.
// Usage: node peer.mjs <announce url> <a|b|c> <milliseconds to run>
// Prints one JSON line: what the client saw, with the peer ids (hex) of the
// peers it got an offer or an answer from.
import Client from 'bittorrent-tracker'
import wrtc from '@roamhq/wrtc'

const [, , url, role, runMs] = process.argv
const infoHash = 'c0ffee'.padEnd(40, '0')
if (!['a', 'b', 'c'].includes(role) || !(Number(runMs) > 0)) {
  console.error('usage: node peer.mjs <announce url> <a|b|c> <milliseconds to run>')
  process.exit(2)
}
const peerId = (role + role).repeat(20)
const client = new Client({ infoHash, peerId, announce: [url], wrtc, port: 6881 })
const seen = { role, updates: 0, peers: 0, peerIds: [], warnings: [], scrape: null, complete: null, incomplete: null }

client.on('error', (e) => seen.warnings.push('error: ' + e.message))
client.on('warning', (e) => seen.warnings.push(e.message))
client.on('update', (d) => {
  seen.updates++
  seen.complete = d.complete
  seen.incomplete = d.incomplete
})
client.on('peer', (peer) => {
  seen.peers++
  if (!seen.peerIds.includes(peer.id)) seen.peerIds.push(peer.id)
  peer.on('error', () => {})
})
client.on('scrape', (d) => { seen.scrape = { complete: d.complete, incomplete: d.incomplete } })
client.start()
setTimeout(() => client.scrape(), Number(runMs) / 2)
setTimeout(() => {
  console.log(JSON.stringify(seen))
  client.stop()
  setTimeout(() => process.exit(0), 200)
}, Number(runMs))
