"""A single-threaded HTTP server. GET /health answers 200; GET /hang blocks the server for good
while the process keeps running (a deadlock, as far as clients can tell)."""

import signal
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/hang":
            print("hanging on purpose", flush=True)
            while True:
                time.sleep(3600)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def on_term(signum, frame):
    raise SystemExit(0)


signal.signal(signal.SIGTERM, on_term)
server = HTTPServer(("0.0.0.0", 8000), Handler)
print("ready", flush=True)
server.serve_forever()
