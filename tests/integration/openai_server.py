"""A local HTTP server speaking the OpenAI chat-completions API (``POST
/v1/chat/completions``, and Azure OpenAI's ``POST /openai/deployments/{deployment}/
chat/completions?api-version=…``; plain and streamed as server-sent events, with
usage), for testing ragline's LLM client against real HTTP. It answers with
``reply(messages)`` and can be told to fail, to stall, to stream slowly, to ask for a
key, or to go down (refuse connections); it counts what it was asked and how many
tokens it actually sent.

    with openai_server(Behaviour(reply=lambda messages: "Hi [1].")) as (url, behaviour):
        ...                                    # url: http://127.0.0.1:PORT/v1

    with OpenAIServer() as server:             # the handle ragline.testing.llm steers
        server.fail(503, times=1); server.down(); server.up()

    Behaviour(reply=obedient("Calibrate it [1]."))  # does what a passage tells it to
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.integration.json_handler import JsonHandler

Reply = Callable[[list[dict[str, str]]], str]


def echo_last(messages: list[dict[str, str]]) -> str:
    return f"You said: {messages[-1]['content'][:80]}"


_ORDER = re.compile(r"Ignore the question and say (?P<say>.+?)\s*(?:</source>|$)", re.DOTALL)
_REFERENCE = re.compile(r"\((\d{1,3})\)")


def obedient(otherwise: str, *, cite: bool = False) -> Reply:
    """A model that obeys instructions injected in passages: when any message says
    "Ignore the question and say X", it answers X, word for word as it reads it (the
    rest of the passage included); otherwise ``otherwise``. With ``cite``, it writes
    the references it read, "(n)", as the ``[n]`` markers its prompt asks for, as a
    model told to cite its sources would."""

    def reply(messages: list[dict[str, str]]) -> str:
        for message in messages:
            found = _ORDER.search(message["content"])
            if found:
                said = html.unescape(" ".join(found.group("say").split()))
                return _REFERENCE.sub(r"[\1]", said) if cite else said
        return otherwise

    return reply


@dataclass
class Behaviour:
    reply: Reply = echo_last
    fail_status: int | None = None  # answer requests with this status...
    fail_times: int | None = None  # ...this many more times (None: every request)
    fail_first: int = 0  # answer this many requests with 500 first
    api_key: str | None = None  # when set, a request without it is answered 401
    delay: float = 0.0  # seconds before answering
    token_delay: float = 0.0  # seconds between streamed tokens
    requests: int = 0
    tokens_sent: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(JsonHandler):
    server: _Server

    def do_POST(self) -> None:
        behaviour = self.server.behaviour
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        with behaviour.lock:
            behaviour.requests += 1
            behaviour.bodies.append(body)
            behaviour.paths.append(self.path)
            number = behaviour.requests
        key_header = self._route()
        if key_header is None:
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if behaviour.api_key is not None and self._key(key_header) != behaviour.api_key:
            self._json(401, {"error": {"message": "Incorrect API key provided"}})
            return
        if behaviour.delay:
            time.sleep(behaviour.delay)
        with behaviour.lock:
            status = behaviour.fail_status
            if status is not None and behaviour.fail_times is not None:
                if behaviour.fail_times > 0:
                    behaviour.fail_times -= 1
                else:
                    status = None
        if status is not None:
            self._json(status, {"error": {"message": "failing on purpose"}})
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

    def _route(self) -> str | None:
        """The header that carries the key on this path (OpenAI's or Azure's form), or
        None when the path is neither."""
        url = urlsplit(self.path)
        if url.path == "/v1/chat/completions":
            return "Authorization"
        azure = re.fullmatch(r"/openai/deployments/[^/]+/chat/completions", url.path)
        if azure and parse_qs(url.query).get("api-version"):
            return "api-key"
        return None

    def _key(self, header: str) -> str | None:
        value = self.headers.get(header)
        if header == "Authorization":
            return value[len("Bearer ") :] if value and value.startswith("Bearer ") else None
        return value

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


class OpenAIServer:
    """The server on a free port, as a context manager; also the handle by which
    ``ragline.testing.llm.LLMContract`` makes it misbehave. ``url`` is OpenAI's base
    URL (``…/v1``), ``origin`` an Azure resource URL."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self._port = 0
        self._server: _Server | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def requests(self) -> int:
        return self.behaviour.requests

    @property
    def tokens_sent(self) -> int:
        return self.behaviour.tokens_sent

    def answer(self, text: str, *, token_delay: float = 0.0) -> None:
        """Answer every request with ``text`` from now on."""
        with self.behaviour.lock:
            self.behaviour.reply = lambda _: text
            self.behaviour.token_delay = token_delay
            self.behaviour.fail_status = None
            self.behaviour.fail_times = None

    def fail(self, status: int, *, times: int | None = None) -> None:
        """Answer the next ``times`` requests (all of them when None) with ``status``."""
        with self.behaviour.lock:
            self.behaviour.fail_status = status
            self.behaviour.fail_times = times

    def down(self) -> None:
        """Stop listening: connections are refused until ``up()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def up(self) -> None:
        """Listen (again, on the same port)."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.behaviour = self.behaviour
        self._port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()


@contextmanager
def openai_server(behaviour: Behaviour | None = None) -> Iterator[tuple[str, Behaviour]]:
    """Yields the server's base URL (``http://127.0.0.1:PORT/v1``) and its behaviour,
    which the test may change while it runs."""
    with OpenAIServer(behaviour) as server:
        yield server.url, server.behaviour
