"""A tiny HTTP server that exits 0 on SIGTERM (the graceful shutdown docker stop asks for)."""

import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("0.0.0.0", 8000), Hello)


def on_term(signum, frame):
    print("SIGTERM received, shutting down", flush=True)
    raise SystemExit(0)  # leaves serve_forever() at once; finally closes the socket


signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
try:
    server.serve_forever()
finally:
    server.server_close()
    print("bye", flush=True)
sys.exit(0)
