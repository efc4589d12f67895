"""A static server for the streaming test: the page, the package, and the
clip as a web seed that honours Range and trickles its bytes (so playback
must start before the download ends). Serves /media/clip.torrent made from
the clip. Usage: serve.py PKG_DIR PORT_FILE"""

import hashlib
import http.server
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = sys.argv[1]
PIECE = 16 * 1024
RATE = 8 * 1024  # bytes per second per request
CLIP = open(os.path.join(HERE, "clip.webm"), "rb").read()


def bencode(value):
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, str):
        return bencode(value.encode())
    if isinstance(value, dict):
        items = sorted((k.encode(), v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(value)


PIECES = b"".join(hashlib.sha1(CLIP[i:i + PIECE]).digest() for i in range(0, len(CLIP), PIECE))
TORRENT = bencode({"info": {"name": "clip.webm", "length": len(CLIP), "piece length": PIECE,
                            "pieces": PIECES}})
TYPES = {".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html",
         ".webm": "video/webm"}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, kind, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        return body

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/media/clip.webm":
            return self.clip()
        if path == "/media/clip.torrent":
            body = self.send(200, TORRENT, "application/x-bittorrent")
        elif path in ("/", "/index.html"):
            body = self.send(200, open(os.path.join(HERE, "index.html"), "rb").read(), "text/html")
        elif path.startswith("/pkg/") and "/" not in path[5:] and ".." not in path:
            file = os.path.join(PKG, path[5:])
            if not os.path.isfile(file):
                return self.send(404, b"", "text/plain")
            extra = [("Service-Worker-Allowed", "/")] if path.endswith("-sw.js") else []
            body = self.send(200, open(file, "rb").read(),
                             TYPES.get(os.path.splitext(file)[1], "application/octet-stream"), extra)
        else:
            body = self.send(404, b"", "text/plain")
        self.wfile.write(body)

    def clip(self):
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not match:
            self.wfile.write(self.send(200, CLIP, "video/webm"))
            return
        start = int(match.group(1))
        end = min(int(match.group(2) or len(CLIP) - 1), len(CLIP) - 1)
        if start > end:
            self.send(416, b"", "text/plain", [("Content-Range", "bytes */%d" % len(CLIP))])
            return
        body = CLIP[start:end + 1]
        self.send(206, body, "video/webm",
                  [("Content-Range", "bytes %d-%d/%d" % (start, end, len(CLIP)))])
        for i in range(0, len(body), 1024):
            self.wfile.write(body[i:i + 1024])
            self.wfile.flush()
            time.sleep(1024 / RATE)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
