"""Shared fixtures: one embedded PostgreSQL (pgserver, with pgvector) and one embedding
model for the whole session; a clean database for every test that asks for one.

``engine`` and ``clean_db`` connect as the tables' owner, so that a test may empty,
break and repair the schema; ``service_engine`` is what the service itself (and every
process a test starts) connects as: a role that row-level security binds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings, get_settings
from ragline.db.engine import get_engine, owner_engine
from ragline.embedding.base import Embedder
from ragline.embedding.factory import get_embedder
from ragline.ingest.pipeline import Pipeline
from ragline.logs import configure_logging
from tests import services

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "corpus"


@pytest.fixture(scope="session", autouse=True)
def ragline_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test, and every process a test starts, uses a fresh RAGLINE_HOME."""
    home = tmp_path_factory.mktemp("ragline-home")
    saved = {key: os.environ.get(key) for key in ("RAGLINE_HOME", "RAGLINE_DATABASE_URL")}
    os.environ["RAGLINE_HOME"] = str(home)
    os.environ.pop("RAGLINE_DATABASE_URL", None)
    get_settings.cache_clear()
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(ragline_home: Path) -> Settings:
    settings = get_settings()
    configure_logging(settings)
    return settings


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    """The owner's engine: schema work and fixtures, never bound by row-level security."""
    return owner_engine(settings)


@pytest.fixture(scope="session")
def service_engine(settings: Settings) -> Engine:
    """The service's engine (``get_engine``), as the API, the CLI and workers use it."""
    return get_engine(settings)


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embedder:
    return get_embedder(settings)


@pytest.fixture
def clean_db(engine: Engine) -> Engine:
    """An empty index, no tenant policy and an empty audit log. The embedding cache is
    kept: it is keyed by tenant and content, so it changes no result, only how many
    chunks reach the model."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "TRUNCATE documents, chunks, postings, bm25_stats, sync_runs, uploads, jobs, "
                "rate_buckets, conversations, answers, feedback, answer_cache, sources, "
                "tenant_policies, audit_log RESTART IDENTITY"
            )
        )
    return engine


@pytest.fixture
def cold_cache(clean_db: Engine) -> Engine:
    """An empty index and an empty embedding cache: every chunk reaches the model."""
    with clean_db.begin() as conn:
        conn.execute(sa.text("TRUNCATE embedding_cache"))
    return clean_db


@pytest.fixture
def pipeline(clean_db: Engine, embedder: Embedder, settings: Settings) -> Pipeline:
    return Pipeline(clean_db, embedder, settings)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the sample corpus, free to edit."""
    target = tmp_path / "corpus"
    shutil.copytree(SAMPLES, target)
    return target


# Outside services (tests/services.py): found from RAGLINE_TEST_*_URL, started when down
# at their local default. Redis and RabbitMQ are per module: a database and a virtual
# host of its own, so that no module sees another's keys or messages.


@pytest.fixture(scope="module")
def redis_url(request: pytest.FixtureRequest) -> str:
    """Redis, in this module's own database, emptied before the module's first test."""
    import redis

    url = services.redis_url(request.module.__name__)
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def amqp_url(request: pytest.FixtureRequest) -> str:
    """RabbitMQ, in this module's own virtual host."""
    return services.amqp_vhost_url(request.module.__name__)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A plain PostgreSQL server (``postgresql://``; see ``services.sqlalchemy_url``)."""
    return services.ensure_postgres()


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """MariaDB, as a SQLAlchemy URL (``mysql+pymysql://``)."""
    return services.ensure_mariadb()
