"""Caches that leak nothing: what one tenant embedded or searched is not found (and so
not revealed by a faster or cheaper answer) by another."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.embedding.base import Embedder
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.pipeline import Pipeline
from ragline.search.hybrid import Searcher


def test_a_tenant_embeds_a_text_another_tenant_already_holds(
    cold_cache: Engine, pipeline: Pipeline, corpus: Path
) -> None:
    first = pipeline.sync(FileSource(corpus), collection="docs", tenant="acme")
    assert first.embedded == first.chunks > 0

    again = pipeline.sync(FileSource(corpus), collection="copy", tenant="acme")
    assert (again.added, again.embedded, again.embedding_calls) == (20, 0, 0)

    other = pipeline.sync(FileSource(corpus), collection="docs", tenant="globex")
    assert other.embedded == other.chunks == first.chunks
    assert other.embedding_calls >= 1
    with cold_cache.connect() as conn:
        tenants = conn.execute(
            sa.text("SELECT tenant, count(*) FROM embedding_cache GROUP BY tenant ORDER BY 1")
        ).all()
    assert [(t, n) for t, n in tenants] == [("acme", first.chunks), ("globex", first.chunks)]


def test_a_query_another_tenant_asked_is_not_a_cache_hit(
    clean_db: Engine, embedder: Embedder, settings: Settings
) -> None:
    searcher = Searcher(clean_db, settings, embedder)
    cache = searcher.query_cache
    searcher.search("how do I calibrate the oxygen probe?", mode="dense", tenant="acme")
    assert (cache.hits, cache.misses) == (0, 1)

    searcher.search("how do I calibrate the oxygen probe?", mode="dense", tenant="globex")
    assert (cache.hits, cache.misses) == (0, 2)

    searcher.search("how do I calibrate the oxygen probe?", mode="dense", tenant="acme")
    assert (cache.hits, cache.misses) == (1, 2)
