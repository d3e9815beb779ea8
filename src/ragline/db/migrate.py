"""Schema migrations (Alembic), applied on first use and by ``ragline db upgrade``.

The vector column's dimension is that of the configured embedding model when the
schema is first created; the model's name and dimension are recorded in
``index_meta`` and checked by every reader and writer of embeddings.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ragline.db.locks import session_lock
from ragline.errors import DatabaseError, EmbeddingModelMismatch
from ragline.modelspec import ModelSpec

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = "ragline:migrate"  # serialises concurrent upgrades of one database


def alembic_config(connection: sa.Connection, spec: ModelSpec) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["embedding_model"] = spec.name
    config.attributes["embedding_dim"] = spec.dimension
    config.attributes["embedder"] = spec.embedder
    return config


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: sa.Connection, spec: ModelSpec) -> str | None:
    """Bring the schema to the latest revision; safe to call from many processes at once.
    A new schema is built for the embedding model ``spec``."""
    _require_vector(connection)
    with session_lock(connection, _LOCK_KEY, wait=True):
        if current_revision(connection) != head_revision():
            command.upgrade(alembic_config(connection, spec), "head")
        connection.commit()
    return current_revision(connection)


def _require_vector(connection: sa.Connection) -> None:
    version = connection.execute(sa.text("SHOW server_version_num")).scalar_one()
    if int(version) < 150000:
        raise DatabaseError(f"ragline needs PostgreSQL 15 or newer (server is {version})")
    available = connection.execute(
        sa.text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
    ).scalar()
    if available is None:
        raise DatabaseError(
            "the PostgreSQL server has no 'vector' extension (pgvector). Install pgvector on "
            "the server (https://github.com/pgvector/pgvector#installation), or unset "
            "RAGLINE_DATABASE_URL to use the embedded database, which includes it."
        )
    connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    connection.commit()


def index_meta(connection: sa.Connection) -> dict[str, str]:
    """What the index records of itself: the embedding model, its dimension, the
    embedder that built it."""
    return dict(connection.execute(sa.text("SELECT key, value FROM index_meta")).all())


def check_embedding_model(connection: sa.Connection, name: str, dimension: int) -> None:
    """Fail clearly if the index was built with another embedding model."""
    rows = index_meta(connection)
    built_name, built_dim = rows.get("embedding_model"), rows.get("embedding_dim")
    if built_name is None or built_dim is None:
        raise DatabaseError("index_meta is missing the embedding model; run `ragline db upgrade`")
    if built_name != name or int(built_dim) != dimension:
        raise EmbeddingModelMismatch(
            f"this index was built with the embedding model {built_name!r} ({built_dim} "
            f"dimensions), but {name!r} ({dimension} dimensions) is configured. Set "
            f"RAGLINE_EMBEDDING_MODEL={built_name} to use it, or point RAGLINE_HOME / "
            "RAGLINE_DATABASE_URL at a new index to build one with the other model."
        )
