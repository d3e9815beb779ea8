"""An embedding server that speaks OpenAI's embeddings API: OpenAI, Azure OpenAI, vLLM,
Ollama, LM Studio, TEI's OpenAI route — anything answering ``POST {base_url}/embeddings``::

    embedder = OpenAIEmbedder(
        model="text-embedding-3-small",
        dimension=1536,
        base_url="https://api.openai.com/v1",
        api_key=key,
        tokenizer=HFTokenCounter(Path("tokenizer.json")),
    )
    embedder.embed(["how do I calibrate the oxygen sensor?"]).shape     # (1, 1536)

Texts go at most ``batch_size`` to a request, each cut to ``max_tokens`` first. A
request that fails for a transient reason (429, 5xx, a connection error, a timeout) is
tried again, waiting what the server's Retry-After asks or a jittered backoff
(``ragline.retry``); once the retries are spent, ``EmbeddingUnavailable``. Any other
refusal (a bad key, an unknown model) is an ``EmbeddingError`` at once, with the
server's message. The requests and tokens a process sends per minute are capped by one
budget per endpoint, shared by all its threads.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import httpx
import numpy as np

from ragline.embedding.base import TokenCounter, Vectors
from ragline.errors import EmbeddingDimensionMismatch, EmbeddingError, EmbeddingUnavailable
from ragline.logs import get_logger
from ragline.metrics import EMBEDDED_TEXTS, EMBEDDING_BATCH_SECONDS
from ragline.retry import RETRY_STATUSES, Backoff, send_with_retries

log = get_logger(__name__)

Api = Literal["openai", "azure"]


class TokenBucket:
    """One rate per minute, as a bucket refilled at ``per_minute / 60`` a second that
    holds one second's worth (providers enforce a minute's limit over shorter windows:
    600 requests a minute may mean 10 a second). ``reserve(cost)`` takes ``cost`` at
    once and says how long to wait before spending it, so waiters are served in the
    order they came. A cost larger than the bucket waits for a full one and leaves a
    debt that the next callers wait out: over time the rate holds, whatever the sizes."""

    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self._level = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self, cost: float) -> float:
        with self._lock:
            now = self._clock()
            self._level = min(self.capacity, self._level + (now - self._updated) * self.rate)
            self._updated = now
            wait = max(0.0, (min(cost, self.capacity) - self._level) / self.rate)
            self._level -= cost
            return wait


class Budget:
    """Requests and tokens per minute (0: unlimited) that one process sends to one
    endpoint; ``spend`` sleeps until a request fits both."""

    def __init__(self, requests_per_minute: float = 0, tokens_per_minute: float = 0) -> None:
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute > 0 else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute > 0 else None

    def spend(self, tokens: int) -> float:
        """Take one request and ``tokens`` tokens; the seconds slept for them."""
        wait = self.requests.reserve(1) if self.requests is not None else 0.0
        if self.tokens is not None:
            wait = max(wait, self.tokens.reserve(tokens))
        if wait > 0:
            time.sleep(wait)
        return wait


_budgets_lock = threading.Lock()
_budgets: dict[tuple[str, float, float], Budget] = {}


def shared_budget(endpoint: str, requests_per_minute: float, tokens_per_minute: float) -> Budget:
    """The process's one budget for ``endpoint`` at these rates."""
    key = (endpoint, requests_per_minute, tokens_per_minute)
    with _budgets_lock:
        return _budgets.setdefault(key, Budget(requests_per_minute, tokens_per_minute))


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible server. ``api="azure"`` takes the resource
    URL as ``base_url``, the deployment as ``model`` and needs an ``api_version``."""

    def __init__(
        self,
        *,
        model: str,
        dimension: int,
        base_url: str,
        tokenizer: TokenCounter,
        api: Api = "openai",
        api_key: str | None = None,
        api_version: str | None = None,
        send_dimensions: bool = False,
        max_tokens: int = 8191,
        batch_size: int = 32,
        timeout: float = 30.0,
        max_retries: int = 5,
        requests_per_minute: float = 0,
        tokens_per_minute: float = 0,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = model
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.send_dimensions = send_dimensions
        self.backoff = backoff or Backoff(first=0.5, cap=30.0)
        base = base_url.rstrip("/")
        self._headers: dict[str, str] = {}
        if api == "azure":
            if not api_version:
                raise EmbeddingError(
                    "Azure OpenAI needs an api-version (RAGLINE_EMBEDDING_API_VERSION)"
                )
            self.url = f"{base}/openai/deployments/{model}/embeddings?api-version={api_version}"
            if api_key:
                self._headers["api-key"] = api_key
        else:
            self.url = f"{base}/embeddings"
            if api_key:
                self._headers["Authorization"] = f"Bearer {api_key}"
        self.api = api
        self.budget = shared_budget(self.url, requests_per_minute, tokens_per_minute)
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)))

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.name!r}, url={self.url!r})"

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length row per text, in input order."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        inputs = [self._fit(text) for text in texts]
        rows: list[Vectors] = []
        for start in range(0, len(inputs), self.batch_size):
            rows.append(self._request(inputs[start : start + self.batch_size]))
        vectors = np.concatenate(rows).astype(np.float32, copy=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(norms > 0):
            raise EmbeddingError(f"embedding server {self.url}: it returned a zero (or NaN) vector")
        EMBEDDED_TEXTS.labels(model=self.name).inc(len(texts))
        unit: Vectors = (vectors / norms).astype(np.float32, copy=False)
        return unit

    def close(self) -> None:
        self._client.close()

    def _fit(self, text: str) -> str:
        """``text``, cut to its first ``max_tokens`` tokens if it is longer."""
        if self.tokenizer.count(text) <= self.max_tokens:
            return text
        pieces = self.tokenizer.split(text, self.max_tokens)
        return pieces[0] if pieces else text

    def _body(self, batch: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"input": batch, "encoding_format": "float"}
        if self.api == "openai":
            body["model"] = self.name
        if self.send_dimensions:
            body["dimensions"] = self.dimension
        return body

    def _request(self, batch: list[str]) -> Vectors:
        body = self._body(batch)
        tokens = sum(self.tokenizer.count(text) for text in batch)
        took: list[float] = []

        def send() -> httpx.Response:
            self.budget.spend(tokens)
            started = time.perf_counter()
            response = self._client.post(self.url, json=body, headers=self._headers)
            took.append(time.perf_counter() - started)
            return response

        def on_retry(attempt: int, error: BaseException | None, wait: float) -> None:
            log.warning(
                "embedding_retry",
                model=self.name,
                attempt=attempt,
                wait=round(wait, 3),
                error=f"{type(error).__name__}: {error}" if error else "status",
            )

        try:
            response = send_with_retries(
                send,
                attempts=self.max_retries + 1,
                backoff=self.backoff,
                transient=_transient,
                on_retry=on_retry,
            )
        except httpx.TransportError as e:
            raise EmbeddingUnavailable(
                f"embedding server {self.url} did not answer after {self.max_retries + 1} "
                f"attempts: {type(e).__name__}: {e}"
            ) from e
        except httpx.HTTPError as e:
            raise EmbeddingError(f"embedding server {self.url}: {type(e).__name__}: {e}") from e
        self._check(response)
        EMBEDDING_BATCH_SECONDS.labels(model=self.name).observe(took[-1])
        return self._vectors(response, len(batch))

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        where = f"embedding server {self.url} answered {status}: {_message(response)}"
        if status in RETRY_STATUSES:
            raise EmbeddingUnavailable(f"{where} (after {self.max_retries + 1} attempts)")
        if status in (401, 403):
            raise EmbeddingError(
                f"{where}. Check the API key in the environment variable that "
                "RAGLINE_EMBEDDING_API_KEY_ENV names."
            )
        raise EmbeddingError(where)

    def _vectors(self, response: httpx.Response, count: int) -> Vectors:
        try:
            answer = response.json()
            items = answer["data"]
            indexed = sorted(
                (
                    (int(item.get("index", position)), item["embedding"])
                    for position, item in enumerate(items)
                ),
                key=lambda pair: pair[0],
            )
            rows = [_floats(embedding) for _, embedding in indexed]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise EmbeddingError(
                f"embedding server {self.url}: not an embeddings response: {e!r}"
            ) from e
        if [index for index, _ in indexed] != list(range(count)):
            raise EmbeddingError(
                f"embedding server {self.url}: asked for {count} embeddings, got the indexes "
                f"{[index for index, _ in indexed]}"
            )
        for row in rows:
            if row.shape[0] != self.dimension:
                model = answer.get("model") or self.name
                raise EmbeddingDimensionMismatch(
                    f"the server's model {model!r} returns {row.shape[0]} dimensions but "
                    f"RAGLINE_EMBEDDING_DIMENSION is {self.dimension}; set it to "
                    f"{row.shape[0]} and build a new index (RAGLINE_HOME or "
                    f"RAGLINE_DATABASE_URL), or pick a model with {self.dimension}"
                )
        return np.stack(rows)


def _transient(error: BaseException) -> bool:
    """Connection errors and timeouts pass; a URL with no usable scheme does not."""
    return isinstance(error, httpx.TransportError) and not isinstance(
        error, httpx.UnsupportedProtocol
    )


def _floats(embedding: object) -> Vectors:
    """A row from ``embedding``: a list of floats, or base64 little-endian float32 (what
    some servers send whatever ``encoding_format`` asked)."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float32)
    if not isinstance(embedding, list):
        raise TypeError(f"an embedding is a list of numbers, not {type(embedding).__name__}")
    return np.asarray(embedding, dtype=np.float32)


def _message(response: httpx.Response) -> str:
    """The server's own words: OpenAI's ``error.message``, or the start of the body."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except (ValueError, AttributeError):
        pass
    return response.text[:300] or response.reason_phrase
