"""Drives headless Chromium through chromedriver (WebDriver, stdlib only):
opens the streaming test page and waits for its verdict.
Usage: drive.py PAGE_URL PROFILE_DIR"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

PAGE, PROFILE = sys.argv[1], sys.argv[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.load(response)["value"]


port = free_port()
driver = subprocess.Popen([CHROMEDRIVER, "--port=%d" % port],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = "http://127.0.0.1:%d" % port
try:
    for _ in range(100):
        try:
            request(base, "GET", "/status")
            break
        except OSError:
            time.sleep(0.1)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--allow-loopback-in-peer-connection",
            "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
            "--user-data-dir=" + PROFILE]
    caps = {"capabilities": {"alwaysMatch": {
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}}
    session = request(base, "POST", "/session", caps)["sessionId"]
    request(base, "POST", "/session/%s/url" % session, {"url": PAGE})
    result = None
    deadline = time.time() + 120
    while result is None and time.time() < deadline:
        time.sleep(0.5)
        result = request(base, "POST", "/session/%s/execute/sync" % session,
                         {"script": "return window.__result || null", "args": []})
    request(base, "DELETE", "/session/%s" % session)
finally:
    driver.terminate()
    driver.wait()

print(json.dumps(result, indent=2))
good = bool(result) and result.get("ok") and result.get("playedBeforeDone") and result.get("sameBytes")
sys.exit(0 if good else 1)
