"""Database engine: the configured PostgreSQL, or the embedded one.

from ragline.db.engine import get_engine

engine = get_engine()          # migrated to the latest schema on first use
with engine.begin() as conn:
    ...
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from pgvector.psycopg import register_vector
from sqlalchemy.engine import Engine, make_url

from ragline.config import Settings, get_settings
from ragline.db.embedded import embedded_url
from ragline.db.migrate import upgrade
from ragline.errors import DatabaseError
from ragline.modelspec import model_spec

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def database_url(settings: Settings) -> str:
    if settings.database_url is None:
        return embedded_url(settings.home)
    url = make_url(settings.database_url)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername != "postgresql+psycopg":
        raise DatabaseError(
            "RAGLINE_DATABASE_URL must be a PostgreSQL URL (postgresql://...), "
            f"got {url.drivername}"
        )
    return url.render_as_string(hide_password=False)


def get_engine(settings: Settings | None = None) -> Engine:
    """The engine for ``settings`` (cached per URL), with the schema brought up to date."""
    settings = settings or get_settings()
    url = database_url(settings)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url, settings)
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create(url: str, settings: Settings) -> Engine:
    bootstrap = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with bootstrap.connect() as conn:
            upgrade(conn, model_spec(settings))
    except sa.exc.OperationalError as e:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {make_url(url).render_as_string()}: {e.orig}. "
            "Check RAGLINE_DATABASE_URL, or unset it to use the embedded database."
        ) from e
    finally:
        bootstrap.dispose()

    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        register_vector(dbapi_connection)
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET hnsw.ef_search = {int(settings.hnsw_ef_search)}")
        dbapi_connection.commit()

    return engine
