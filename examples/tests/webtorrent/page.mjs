// The chunkswarm demo page in headless Chromium, driven over WebDriver
// (chromedriver's REST API): it opens a magnet link pasted into the search
// box, as a person would, and waits for the file.
// Usage:
//   node page.mjs <chromedriver url> <page url> <magnet link> <seconds> <page log file>
// Prints one JSON line: the page's `window.chunkswarmDemo` when the file's
// SHA-256 is known (or the page failed, or the time is up), plus `timedOut`.
// Writes every line of the page's log to <page log file>. Exits non-zero only
// when the browser itself cannot be driven.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const [, , driver, pageUrl, magnet, seconds, logFile] = process.argv
const chromium = process.env.CHROMIUM || '/usr/bin/chromium'
const profile = mkdtempSync(join(tmpdir(), 'chromium-webtorrent-'))

async function call (method, path, body) {
  const response = await fetch(driver + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const answer = await response.json()
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer.value)}`)
  return answer.value
}

// The flags the Rust browser tests give Chromium (examples/tests/browser/harness.rs).
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required', '--window-size=1280,1000',
  `--user-data-dir=${profile}`]
const { sessionId } = await call('POST', '/session', {
  capabilities: { alwaysMatch: { 'goog:chromeOptions': { binary: chromium, args } } }
})
const run = (script) => call('POST', `/session/${sessionId}/execute/sync`, { script, args: [] })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const STATE = 'const d = window.chunkswarmDemo; return d ? JSON.parse(JSON.stringify(d)) : null;'
const LOG = "return Array.from(document.querySelectorAll('#log li')).map(li => li.className + ' ' + li.textContent).join('\\n');"

let state = null
try {
  await call('POST', `/session/${sessionId}/url`, { url: pageUrl })
  const deadline = Date.now() + Number(seconds) * 1000
  while (Date.now() < deadline) {
    state = await run(STATE)
    if (state?.ready || state?.error) break
    await sleep(100)
  }
  if (state?.ready && !state.error) {
    await run(`document.getElementById('search-input').value = ${JSON.stringify(magnet)};
      document.getElementById('search-form').requestSubmit(); return null;`)
    while (Date.now() < deadline) {
      state = await run(STATE)
      if (state?.sha256 || state?.error) break
      await sleep(250)
    }
  }
} finally {
  try { writeFileSync(logFile, (await run(LOG)) + '\n') } catch (e) { writeFileSync(logFile, `no page log: ${e.message}\n`) }
  await call('DELETE', `/session/${sessionId}`).catch(() => {})
  rmSync(profile, { recursive: true, force: true })
}
const timedOut = !(state?.sha256 || state?.error)
console.log(JSON.stringify({ ...state, peers: state?.peers?.length ?? 0, timedOut }))
