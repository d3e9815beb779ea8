"""RAGLINE_EMBEDDER=openai against a local server speaking OpenAI's embeddings API:
the sample corpus indexed and searched through it, and what the client does when the
server is busy, refuses, answers in another dimension, or has to be spared."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.embedding.base import Embedder
from ragline.embedding.factory import get_embedder
from ragline.errors import (
    ConfigurationError,
    EmbeddingDimensionMismatch,
    EmbeddingError,
    EmbeddingUnavailable,
)
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.pipeline import Pipeline
from ragline.modelspec import model_path
from ragline.search.hybrid import Searcher
from tests.conftest import SAMPLES
from tests.integration.embeddings_server import (
    Behaviour,
    bag_of_words,
    embeddings_server,
    hf_token_counter,
)

DIMENSION = 64
KEY_ENV = "RAGLINE_TEST_EMBEDDING_KEY"
DATABASE = "ragline_openai_embedder"


def openai_settings(server: str, **overrides: Any) -> Settings:
    """Settings for RAGLINE_EMBEDDER=openai on the local server at ``server``."""
    values: dict[str, Any] = {
        "embedder": "openai",
        "embedding_model": "test-embedder",
        "embedding_dimension": DIMENSION,
        "embedding_base_url": f"{server}/v1",
        "embedding_max_tokens": 256,
        "embedding_max_retries": 2,
        "embedding_timeout": 5,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    with embeddings_server(Behaviour(embed=bag_of_words(DIMENSION))) as running:
        yield running


@pytest.fixture
def openai_db(engine: Engine) -> Iterator[str]:
    """A second database on the embedded server, for an index of the server's model."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    yield make_url(engine.url).set(database=DATABASE).render_as_string(hide_password=False)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))


def test_indexes_and_searches_the_samples_through_the_server(
    openai_db: str, embedder: Embedder
) -> None:
    """The server runs the real MiniLM model; ragline reaches it only over HTTP."""
    model = "minilm-over-http"
    behaviour = Behaviour(embed=embedder.embed, model=model)
    with embeddings_server(behaviour) as (url, _):
        settings = openai_settings(
            url,
            embedding_model=model,
            embedding_dimension=embedder.dimension,
            embedding_max_tokens=embedder.max_tokens,
            embedding_timeout=120,  # a model on shared CPUs
            database_url=openai_db,
        )
        remote = get_embedder(settings)
        index = get_engine(settings)
        try:
            report = Pipeline(index, remote, settings).sync(
                FileSource(SAMPLES), collection="samples"
            )
            searcher = Searcher(index, settings, remote)
            query = "how do I set up the oxygen probe so its readings are accurate"
            hits = searcher.search(query, mode="dense", k=3)
            with index.connect() as conn:
                meta = dict(conn.execute(sa.text("SELECT key, value FROM index_meta")).all())
                chunks = conn.execute(sa.text("SELECT count(*) FROM chunks")).scalar_one()
                text, stored = conn.execute(
                    sa.text("SELECT text, embedding FROM chunks ORDER BY id LIMIT 1")
                ).one()
        finally:
            index.dispose()

    assert report.added == 20
    assert report.failed == 0
    assert hits[0].doc_id == "guides/calibration.md"
    assert hits[0].section == "Calibrating the dissolved-oxygen sensor"
    assert meta["embedding_model"] == model
    assert int(meta["embedding_dim"]) == embedder.dimension
    embedded = sum(len(batch) for batch in behaviour.batches)
    assert embedded == chunks + 1  # every chunk, and the query
    assert all(len(batch) <= settings.embedding_batch_size for batch in behaviour.batches)
    # What was stored is what the model computes for the text the chunk was embedded
    # as (its passage, after its title and section), made unit-length.
    stored = np.asarray(stored.to_numpy(), dtype=np.float32)
    assert np.linalg.norm(stored) == pytest.approx(1.0, abs=1e-4)
    sent = [t for batch in behaviour.batches for t in batch if text in t]
    assert sent
    assert float(np.max(embedder.embed(sent) @ stored)) > 0.999


def test_a_storm_of_429s_is_ridden_out_as_retry_after_asks(
    server: tuple[str, Behaviour],
) -> None:
    url, behaviour = server
    embedder = get_embedder(openai_settings(url, embedding_max_retries=8))
    behaviour.fail_next, behaviour.retry_after = 6, "0.05"

    started = time.perf_counter()
    vectors = embedder.embed(["first text", "second text"])
    took = time.perf_counter() - started

    assert vectors.shape == (2, DIMENSION)
    assert (behaviour.requests, behaviour.failed) == (7, 6)
    # Six waits of 0.05 s as asked; the default backoff alone would take over 15 s.
    assert 0.3 <= took < 5


def test_a_503_is_retried_with_backoff(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    embedder = get_embedder(openai_settings(url))
    behaviour.fail_next, behaviour.fail_status = 1, 503

    started = time.perf_counter()
    assert embedder.embed(["text"]).shape == (1, DIMENSION)

    assert (behaviour.requests, behaviour.failed) == (2, 1)
    assert time.perf_counter() - started >= 0.25  # the first backoff, half of 0.5 s at least


def test_when_retries_are_spent_the_server_is_unavailable(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    embedder = get_embedder(openai_settings(url, embedding_max_retries=2))
    behaviour.fail_next, behaviour.retry_after = 100, "0"

    with pytest.raises(EmbeddingUnavailable, match=r"429: Rate limit reached.*3 attempts"):
        embedder.embed(["text"])
    assert behaviour.requests == 3


def test_a_server_of_another_dimension_is_refused_with_what_to_do(
    server: tuple[str, Behaviour],
) -> None:
    url, behaviour = server
    behaviour.dimension = 768
    embedder = get_embedder(openai_settings(url, embedding_dimension=384))

    with pytest.raises(EmbeddingDimensionMismatch) as refused:
        embedder.embed(["text"])

    message = str(refused.value)
    assert "'test-embedder' returns 768 dimensions" in message
    assert "RAGLINE_EMBEDDING_DIMENSION is 384; set it to 768 and build a new index" in message
    assert behaviour.requests == 1


def test_dimensions_are_asked_for_only_when_configured(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    behaviour.supports_dimensions = True
    shortened = get_embedder(
        openai_settings(url, embedding_dimension=32, embedding_send_dimensions=True)
    )
    assert shortened.embed(["text"]).shape == (1, 32)
    assert behaviour.bodies[-1]["dimensions"] == 32

    plain = get_embedder(openai_settings(url, embedding_dimension=32))
    with pytest.raises(EmbeddingDimensionMismatch, match="returns 64 dimensions"):
        plain.embed(["text"])
    assert "dimensions" not in behaviour.bodies[-1]


def test_a_wrong_key_is_a_clear_error_not_retried(
    server: tuple[str, Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, behaviour = server
    behaviour.api_key = "sk-right"
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    settings = openai_settings(url, embedding_api_key_env=KEY_ENV, embedding_max_retries=5)

    with pytest.raises(EmbeddingError) as refused:
        get_embedder(settings).embed(["text"])

    assert not isinstance(refused.value, EmbeddingUnavailable)
    assert "401: Incorrect API key provided" in str(refused.value)
    assert "RAGLINE_EMBEDDING_API_KEY_ENV" in str(refused.value)
    assert behaviour.requests == 1
    assert "sk-wrong" not in settings.model_dump_json()

    monkeypatch.setenv(KEY_ENV, "sk-right")
    right = get_embedder(openai_settings(url, embedding_api_key_env=KEY_ENV, embedding_timeout=6))
    assert right.embed(["text"]).shape == (1, DIMENSION)


def test_a_key_variable_that_is_not_set_fails_at_start(
    server: tuple[str, Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigurationError, match=f"{KEY_ENV} is not set"):
        get_embedder(openai_settings(server[0], embedding_api_key_env=KEY_ENV))


def test_azure_form(server: tuple[str, Behaviour], monkeypatch: pytest.MonkeyPatch) -> None:
    url, behaviour = server
    behaviour.api_key = "azure-key"
    monkeypatch.setenv(KEY_ENV, "azure-key")
    settings = openai_settings(
        url,
        embedding_api="azure",
        embedding_base_url=url,
        embedding_model="my-deployment",
        embedding_api_version="2024-10-21",
        embedding_api_key_env=KEY_ENV,
    )

    assert get_embedder(settings).embed(["text"]).shape == (1, DIMENSION)
    assert behaviour.bodies[-1] == {"input": ["text"], "encoding_format": "float"}


def test_batches_and_cut_inputs_are_what_the_server_gets(
    server: tuple[str, Behaviour], settings: Settings
) -> None:
    url, behaviour = server
    count = hf_token_counter(model_path(settings) / "tokenizer.json")
    behaviour.count_tokens, behaviour.max_input_tokens = count, 256
    embedder = get_embedder(openai_settings(url, embedding_batch_size=4))
    long_text = "The logger wakes every ten minutes, measures, and sleeps. " * 400
    texts = [f"text number {i}" for i in range(9)] + [long_text]

    assert embedder.embed([]).shape == (0, DIMENSION)
    assert behaviour.requests == 0
    vectors = embedder.embed(texts)

    assert vectors.shape == (10, DIMENSION)
    assert [len(batch) for batch in behaviour.batches] == [4, 4, 2]
    sent = behaviour.batches[-1][-1]
    assert count(long_text) > 4000
    assert 240 <= count(sent) <= 256
    assert long_text.startswith(sent)


def test_the_budget_throttles_all_threads_of_the_process(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    texts = [f"text number {i}" for i in range(20)]

    def run(embedder: Embedder) -> tuple[float, list[float]]:
        """Two threads embedding 20 texts each: (seconds, when each request arrived)."""
        threads = [threading.Thread(target=embedder.embed, args=(texts,)) for _ in range(2)]
        started, first = time.monotonic(), len(behaviour.arrivals)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started, [t - started for t in behaviour.arrivals[first:]]

    free, _ = run(get_embedder(openai_settings(url, embedding_batch_size=1)))
    capped = openai_settings(url, embedding_batch_size=1, embedding_requests_per_minute=1200)
    throttled, arrivals = run(get_embedder(capped))

    assert behaviour.requests == 80
    # 1200 requests a minute: 20 at once, then 20 a second, whichever thread asks. The
    # k-th request cannot arrive before (k - 20) / 20 s, and the last not before 1 s.
    for k, arrived in enumerate(sorted(arrivals), start=1):
        assert arrived >= (k - 20) / 20 - 0.01, (k, arrived)
    assert 0.99 <= throttled < 10, (free, throttled)


def test_the_token_budget_throttles(server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    settings = openai_settings(url, embedding_batch_size=4, embedding_tokens_per_minute=6000)
    embedder = get_embedder(settings)
    texts = [f"sensor {i} reads {i * 7} millisiemens per centimetre" for i in range(20)]
    tokens = sum(embedder.tokenizer.count(text) for text in texts)

    started = time.perf_counter()
    embedder.embed(texts)
    took = time.perf_counter() - started

    # 6000 tokens a minute: 100 at once, then 100 a second.
    assert tokens > 200
    assert (tokens - 100) / 100 - 0.01 <= took < 10 * tokens / 100
    assert behaviour.requests == 5
