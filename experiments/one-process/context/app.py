"""The web part: answers /health; exits 0 on SIGTERM."""

import signal
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


def on_term(signum, frame):
    raise SystemExit(0)


signal.signal(signal.SIGTERM, on_term)
server = HTTPServer(("0.0.0.0", 8000), Hello)
print("app ready", flush=True)
server.serve_forever()
