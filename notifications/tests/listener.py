"""A local webhook receiver on the loopback for the notification tests."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Listener:
    """Answers the queued status codes in turn (then 200) and keeps the bodies, raw bodies and headers.
    A queued status may be a (code, {header: value}) pair."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.headers: list[dict] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                listener.raw.append(raw)
                listener.headers.append({k.lower(): v for k, v in self.headers.items()})
                listener.bodies.append(json.loads(raw or b"{}"))
                code = listener.statuses.pop(0) if listener.statuses else 200
                extra = {}
                if isinstance(code, tuple):
                    code, extra = code
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
