"""An index created by an earlier schema keeps its data through the upgrade to head,
and comes out with the service's tables and row-level security."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine, make_url

from ragline.config import Settings
from ragline.db.migrate import alembic_config, current_revision, head_revision, upgrade
from ragline.db.tenancy import tenant_scope
from ragline.modelspec import model_spec

DATABASE = "ragline_upgrade"


@pytest.fixture
def old_database(engine: Engine) -> Iterator[Engine]:
    """A second database on the embedded server, for an index built by revision 0003."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    url = make_url(engine.url).set(database=DATABASE)
    old = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield old
    old.dispose()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE}"))


def test_upgrade_from_0003_keeps_the_index_and_adds_row_level_security(
    old_database: Engine, settings: Settings
) -> None:
    with old_database.connect() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
        command.upgrade(alembic_config(conn, model_spec(settings)), "0003")
        conn.commit()
        assert current_revision(conn) == "0003"
        for tenant in ("a", "b"):
            conn.execute(
                sa.text(
                    "INSERT INTO documents (tenant, collection, doc_id, source, status) "
                    "VALUES (:t, 'c', 'doc', 'files:x', 'active')"
                ),
                {"t": tenant},
            )
        conn.commit()

        assert upgrade(conn, model_spec(settings)) == head_revision()

    with tenant_scope(old_database, "a") as conn:
        rows = conn.execute(sa.text("SELECT tenant FROM documents")).scalars().all()
        assert rows == ["a"]
        assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one() == 0
    with old_database.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one() == 2
        secured = conn.execute(
            sa.text(
                "SELECT relname FROM pg_class WHERE relrowsecurity AND relkind = 'r' "
                "ORDER BY relname"
            )
        ).scalars()
        assert list(secured) == [
            "answer_cache",
            "answers",
            "api_keys",
            "audit_log",
            "bm25_stats",
            "chunks",
            "conversations",
            "documents",
            "embedding_cache",
            "feedback",
            "jobs",
            "postings",
            "rate_buckets",
            "sources",
            "sync_runs",
            "tenant_policies",
            "uploads",
        ]
