"""Concurrent embedding calls merged into shared model calls give each caller the rows
it would have got alone; repeated queries are embedded once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Event

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.embedding.base import Embedder, TokenCounter, Vectors
from ragline.embedding.batching import BatchingEmbedder, LazyEmbedder
from ragline.errors import EmbeddingError
from ragline.search.hybrid import Searcher


class _Counting:
    """Wraps the real model, counting its calls."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.tokenizer: TokenCounter = inner.tokenizer

    def embed(self, texts: list[str]) -> Vectors:
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def test_concurrent_calls_share_batches_and_get_their_own_rows(embedder: Embedder) -> None:
    counting = _Counting(embedder)
    batching = BatchingEmbedder(counting)
    queries = [f"question number {n} about the oxygen sensor" for n in range(40)]
    expected = embedder.embed(queries)
    with ThreadPoolExecutor(max_workers=16) as pool:
        rows = list(pool.map(lambda q: batching.embed([q])[0], queries))
    np.testing.assert_allclose(np.stack(rows), expected, atol=1e-5)
    assert sum(counting.calls) == 40
    assert len(counting.calls) < 40, "calls waiting together were merged"
    assert batching.embed([]).shape == (0, embedder.dimension)


def test_a_model_failure_fails_its_callers_and_the_next_call_works(embedder: Embedder) -> None:
    class FailsOnce(_Counting):
        def embed(self, texts: list[str]) -> Vectors:
            if not self.calls:
                self.calls.append(len(texts))
                raise EmbeddingError("model crashed")
            return super().embed(texts)

    batching = BatchingEmbedder(FailsOnce(embedder))
    with pytest.raises(EmbeddingError, match="crashed"):
        batching.embed(["a"])
    assert batching.embed(["a"]).shape == (1, embedder.dimension)


def test_lazy_embedder_builds_once(embedder: Embedder) -> None:
    built = []
    gate = Event()

    def build() -> Embedder:
        gate.wait(5)
        built.append(1)
        return embedder

    lazy = LazyEmbedder(build)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(lambda: lazy.dimension) for _ in range(4)]
        gate.set()
        assert {f.result() for f in futures} == {embedder.dimension}
    assert built == [1]


def test_query_embeddings_are_cached_least_recently_used_first(
    embedder: Embedder, engine: Engine, settings: Settings
) -> None:
    counting = _Counting(embedder)
    searcher = Searcher(engine, settings.model_copy(update={"query_cache_size": 2}), counting)
    for query in ("oxygen probe", "oxygen probe", "tide gauge", "oxygen probe", "wiper"):
        searcher.search(query, mode="dense", tenant="nobody")
    assert counting.calls == [1, 1, 1]  # "oxygen probe", "tide gauge", "wiper"
    searcher.search("tide gauge", mode="dense", tenant="nobody")
    assert counting.calls == [1, 1, 1, 1], "the least recently used query was dropped"
    vectors = searcher.embed_queries(["wiper", "new one", "wiper"], tenant="nobody")
    np.testing.assert_allclose(vectors[0], vectors[2])
    assert counting.calls[-1] == 1, "a repeated query in one batch is embedded once"

    uncached = Searcher(engine, settings.model_copy(update={"query_cache_size": 0}), counting)
    uncached.search("oxygen probe", mode="dense", tenant="nobody")
    uncached.search("oxygen probe", mode="dense", tenant="nobody")
    assert counting.calls[-2:] == [1, 1]
