"""A local HTTP server speaking OpenAI's embeddings API (``POST /v1/embeddings``, and
Azure's ``POST /openai/deployments/{name}/embeddings?api-version=...``), for testing
ragline's embedder against real HTTP::

    with embeddings_server(Behaviour(embed=bag_of_words(64))) as (base_url, behaviour):
        behaviour.fail_next = 3          # the next three requests get 429
        ...
        behaviour.requests               # what it was asked

Vectors come from ``embed`` (a real model, or ``bag_of_words``) and are sent scaled,
not unit-length, as some servers do. Like OpenAI, it refuses an input over
``max_input_tokens`` (counted by ``count_tokens``), an empty input, ``dimensions``
unless ``supports_dimensions``, and a missing or wrong key; knobs make it fail,
reorder, or answer in another dimension.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from tokenizers import Tokenizer

from tests.integration.json_handler import JsonHandler

Embed = Callable[[list[str]], np.ndarray[Any, Any]]
_AZURE = re.compile(r"^/openai/deployments/(?P<name>[^/]+)/embeddings$")


def bag_of_words(dimension: int) -> Embed:
    """Vectors that sum one pseudo-random vector per word (seeded by the word): texts
    sharing words are close, and a text always gets the same vector."""

    @lru_cache(maxsize=100_000)
    def word(token: str) -> np.ndarray[Any, Any]:
        seed = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(dimension)

    def embed(texts: list[str]) -> np.ndarray[Any, Any]:
        rows = []
        for text in texts:
            row = np.zeros(dimension)
            for token in re.findall(r"\w+", text.lower()):
                row += word(token)
            rows.append(row if row.any() else word(""))
        return np.stack(rows)

    return embed


@dataclass
class Behaviour:
    embed: Embed
    model: str = "test-embedder"
    api_key: str | None = None  # required key (Bearer, or Azure's api-key header)
    max_input_tokens: int | None = None  # refuse longer inputs with 400, as OpenAI does
    count_tokens: Callable[[str], int] = lambda text: len(text.split())
    fail_next: int = 0  # answer this many of the next requests with fail_status
    fail_status: int = 429
    retry_after: str | None = None  # the Retry-After header of those answers
    supports_dimensions: bool = False  # honour the request's "dimensions" (or refuse it)
    reverse: bool = False  # list the embeddings in reverse order of their index
    dimension: int | None = None  # cut (or zero-pad) every vector to this dimension
    scale: float = 3.0  # vectors are sent this long
    requests: int = 0  # every request received
    arrivals: list[float] = field(default_factory=list)  # when (time.monotonic())
    failed: int = 0  # requests answered with fail_status on purpose
    batches: list[list[str]] = field(default_factory=list)  # inputs that were embedded
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(JsonHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        behaviour = self.server.behaviour
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        with behaviour.lock:
            behaviour.requests += 1
            behaviour.arrivals.append(time.monotonic())
        url = urlsplit(self.path)
        azure = _AZURE.match(url.path)
        if url.path != "/v1/embeddings" and not azure:
            self._error(404, f"no route {url.path}")
            return
        if azure and not parse_qs(url.query).get("api-version"):
            self._error(404, "Resource not found (api-version is missing)")
            return
        if behaviour.api_key is not None:
            given = (
                self.headers.get("api-key")
                if azure
                else self.headers.get("Authorization", "").removeprefix("Bearer ")
            )
            if given != behaviour.api_key:
                self._error(401, f"Incorrect API key provided: {given or '(none)'}.")
                return
        with behaviour.lock:
            failing = behaviour.fail_next > 0
            if failing:
                behaviour.fail_next -= 1
                behaviour.failed += 1
        if failing:
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            message = "Rate limit reached." if behaviour.fail_status == 429 else "Overloaded."
            self._error(behaviour.fail_status, message, headers)
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "We could not parse the JSON body of your request.")
            return
        with behaviour.lock:
            behaviour.bodies.append(body)
        self._embed(behaviour, body, azure is not None)

    def _embed(self, behaviour: Behaviour, body: dict[str, Any], azure: bool) -> None:
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            self._error(400, "'input' must be a string or a non-empty array of strings.")
            return
        if not azure and not body.get("model"):
            self._error(400, "you must provide a model parameter")
            return
        if any(not text for text in texts):
            self._error(400, "'$.input' is invalid: empty strings are not allowed.")
            return
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            self._error(400, f"'{encoding}' is not one of ['float', 'base64']")
            return
        asked = body.get("dimensions")
        if asked is not None and not behaviour.supports_dimensions:
            self._error(400, "This model does not support specifying dimensions.")
            return
        tokens = [behaviour.count_tokens(text) for text in texts]
        limit = behaviour.max_input_tokens
        if limit is not None and max(tokens) > limit:
            self._error(
                400,
                f"This model's maximum context length is {limit} tokens, however you "
                f"requested {max(tokens)} tokens in your input.",
            )
            return
        with behaviour.lock:  # one model call at a time, like a server with one GPU
            vectors = np.asarray(behaviour.embed(texts), dtype=np.float64)
            behaviour.batches.append(texts)
        if asked is not None:  # text-embedding-3 shortens its vectors
            vectors = vectors[:, : int(asked)]
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * behaviour.scale
        if behaviour.dimension is not None:
            fitted = np.zeros((len(texts), behaviour.dimension))
            width = min(behaviour.dimension, vectors.shape[1])
            fitted[:, :width] = vectors[:, :width]
            vectors = fitted
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(vector, encoding)}
            for i, vector in enumerate(vectors)
        ]
        if behaviour.reverse:
            data.reverse()
        usage = {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}
        self._json(200, {"object": "list", "data": data, "model": behaviour.model, "usage": usage})

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        kind = "invalid_request_error" if status < 429 else "server_error"
        self._json(status, {"error": {"message": message, "type": kind}}, headers)


def _encode(vector: np.ndarray[Any, Any], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(x) for x in vector]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


@contextmanager
def embeddings_server(behaviour: Behaviour) -> Iterator[tuple[str, Behaviour]]:
    """Yields the server's address (``http://127.0.0.1:PORT``: OpenAI's base URL is
    that plus ``/v1``, Azure's is that) and its behaviour, which the test may change
    while it runs."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = behaviour
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.behaviour
    finally:
        server.shutdown()
        server.server_close()


def hf_token_counter(tokenizer_file: Path) -> Callable[[str], int]:
    """Counts tokens as a server running the model of ``tokenizer_file`` would."""
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
