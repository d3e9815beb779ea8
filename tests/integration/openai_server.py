"""A local HTTP server speaking the OpenAI chat-completions API (``POST
/v1/chat/completions``, plain and streamed as server-sent events, with usage), for
testing ragline's LLM client against real HTTP. It answers with ``reply(messages)``
and can be told to fail, to stall, or to stream slowly; it counts what it was asked
and how many tokens it actually sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, str]]], str]


def echo_last(messages: list[dict[str, str]]) -> str:
    return f"You said: {messages[-1]['content'][:80]}"


@dataclass
class Behaviour:
    reply: Reply = echo_last
    fail_status: int | None = None  # answer every request with this status
    fail_first: int = 0  # answer this many requests with 500 first
    delay: float = 0.0  # seconds before answering
    token_delay: float = 0.0  # seconds between streamed tokens
    requests: int = 0
    tokens_sent: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        behaviour = self.server.behaviour
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        with behaviour.lock:
            behaviour.requests += 1
            behaviour.bodies.append(body)
            number = behaviour.requests
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if behaviour.delay:
            time.sleep(behaviour.delay)
        if behaviour.fail_status is not None:
            self._json(behaviour.fail_status, {"error": {"message": "failing on purpose"}})
            return
        if number <= behaviour.fail_first:
            self._json(500, {"error": {"message": "temporary failure"}})
            return
        text = behaviour.reply(body["messages"])
        tokens = text.split(" ")
        tokens = [t + " " for t in tokens[:-1]] + tokens[-1:]
        usage = {
            "prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
            "completion_tokens": len(tokens),
            "total_tokens": 0,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            with behaviour.lock:
                behaviour.tokens_sent += len(tokens)
            self._json(
                200,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "model": body.get("model", "test"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for token in tokens:
                self._event({"choices": [{"index": 0, "delta": {"content": token}}]})
                with behaviour.lock:
                    behaviour.tokens_sent += 1
                if behaviour.token_delay:
                    time.sleep(behaviour.token_delay)
            self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self._event({"choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away: generation stops here

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()

    def _json(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


@contextmanager
def openai_server(behaviour: Behaviour | None = None) -> Iterator[tuple[str, Behaviour]]:
    """Yields the server's base URL (``http://127.0.0.1:PORT/v1``) and its behaviour,
    which the test may change while it runs."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = behaviour or Behaviour()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server.behaviour
    finally:
        server.shutdown()
        server.server_close()
