"""A local HTTP receiver standing in for a Slack incoming webhook (or any webhook):
it records every JSON body posted to it, and can be told to fail first."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Answer this many requests with 500 before accepting any.
    fail_first: int = 0

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for where, body in self.posts if where == path]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    lock = threading.Lock()
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            with lock:
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    status = 500
                else:
                    receiver.posts.append((self.path, body))
                    status = 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"try later")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
