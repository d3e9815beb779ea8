"""Concurrent embedding calls merged into one model call.

    embedder = BatchingEmbedder(get_embedder(settings))
    embedder.embed(["one query"])     # from many threads at once

A server embedding one query per request wastes the model on batches of one, and its
request threads fight over the same cores. Here every call joins a queue; one thread
runs the model on everything waiting (up to ``max_batch`` texts) and hands each caller
its rows. Nothing waits on purpose: a lone call runs at once, and under load the
batches grow by themselves while the model is busy with the previous one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

from ragline.embedding.base import Embedder, TokenCounter, Vectors


class _Wrapper:
    """An embedder that describes itself as the one it wraps."""

    def _target(self) -> Embedder:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self._target().name

    @property
    def dimension(self) -> int:
        return self._target().dimension

    @property
    def max_tokens(self) -> int:
        return self._target().max_tokens

    @property
    def tokenizer(self) -> TokenCounter:
        return self._target().tokenizer


class BatchingEmbedder(_Wrapper):
    def __init__(self, inner: Embedder, *, max_batch: int = 64) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self._pending: queue.SimpleQueue[tuple[list[str], Future[Vectors]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="ragline-embed", daemon=True)
        self._thread.start()

    def _target(self) -> Embedder:
        return self.inner

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        result: Future[Vectors] = Future()
        self._pending.put((list(texts), result))
        return result.result()

    def _serve(self) -> None:
        while True:
            batch = [self._pending.get()]
            size = len(batch[0][0])
            while size < self.max_batch:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                size += len(item[0])
            try:
                vectors = self.inner.embed([text for texts, _ in batch for text in texts])
            except BaseException as e:
                for _, future in batch:
                    future.set_exception(e)
                continue
            start = 0
            for texts, future in batch:
                future.set_result(vectors[start : start + len(texts)])
                start += len(texts)


class LazyEmbedder(_Wrapper):
    """An embedder built on first use (by ``load()`` or any attribute), once, whichever
    thread gets there first; the others wait for it."""

    def __init__(self, build: Callable[[], Embedder]) -> None:
        self._build = build
        self._inner: Embedder | None = None
        self._lock = threading.Lock()

    def load(self) -> Embedder:
        with self._lock:
            if self._inner is None:
                self._inner = self._build()
            return self._inner

    def _target(self) -> Embedder:
        return self.load()

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.load().embed(texts)
