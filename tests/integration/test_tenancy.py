"""Tenant isolation through every endpoint and in the database itself (row-level
security), API keys and roles, and rate limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.auth import authenticate, create_key, revoke_key
from ragline.config import Settings
from ragline.db.tenancy import tenant_scope
from ragline.errors import AuthError
from ragline.ratelimit import PostgresRateLimiter, RateLimiter, RedisRateLimiter
from tests.integration.service import Client, client_for, serve_in_thread

# Every table with row-level security, parents before children (the order they are
# seeded in). ``test_every_table_with_row_level_security_is_checked`` keeps it whole.
TENANT_TABLES = (
    *("documents", "chunks", "postings", "bm25_stats", "sync_runs", "uploads", "jobs"),
    *("conversations", "answers", "feedback", "answer_cache", "sources", "embedding_cache"),
)
# One valid row of each table for ``:tenant``. ``:key`` and ``:uid`` are new for every
# row; ``:document``, ``:chunk``, ``:conversation`` and ``:answer`` name parent rows of
# the same tenant, ``:dim`` the embedding's dimension.
TENANT_ROWS = {
    "documents": "INSERT INTO documents (tenant, collection, doc_id, source, status) "
    "VALUES (:tenant, 'c', :key, 's', 'active') RETURNING id",
    "chunks": "INSERT INTO chunks (document_id, tenant, collection, source, ordinal, text, "
    "token_count, sha256, embedding) VALUES (:document, :tenant, 'c', 's', :n, 'tide gauge', "
    "2, :key, array_fill(0.1::real, ARRAY[CAST(:dim AS integer)])::vector) RETURNING id",
    "postings": "INSERT INTO postings (tenant, term, collection, chunk_id, tf_context, tf_text) "
    "VALUES (:tenant, :key, 'c', :chunk, 0, 1)",
    "bm25_stats": "INSERT INTO bm25_stats (tenant, collection, chunks) VALUES (:tenant, :key, 1)",
    "sync_runs": "INSERT INTO sync_runs (tenant, collection, source, status) "
    "VALUES (:tenant, 'c', 's', 'succeeded')",
    "uploads": "INSERT INTO uploads (id, tenant, collection, filename, content_type, "
    "size_bytes, sha256, storage_key, status) "
    "VALUES (:uid, :tenant, 'c', 'a.md', 'text/markdown', 1, :key, :key, 'queued')",
    "jobs": "INSERT INTO jobs (id, tenant, kind, queue, status, max_attempts) "
    "VALUES (:uid, :tenant, 'index_upload', 'ingest', 'queued', 1)",
    "conversations": "INSERT INTO conversations (id, tenant) VALUES (:uid, :tenant) RETURNING id",
    "answers": "INSERT INTO answers (trace_id, tenant, conversation_id, question, query, "
    "answer, mode) VALUES (:key, :tenant, :conversation, 'q', 'q', 'a', 'extractive') "
    "RETURNING trace_id",
    "feedback": "INSERT INTO feedback (trace_id, tenant, rating) VALUES (:answer, :tenant, 1)",
    "answer_cache": "INSERT INTO answer_cache (tenant, key, answer) VALUES (:tenant, :key, '{}')",
    "sources": "INSERT INTO sources (id, tenant, name, kind, collection, environments) "
    "VALUES (:uid, :tenant, :key, 'filesystem', 'c', ARRAY['dev'])",
    "embedding_cache": "INSERT INTO embedding_cache (tenant, model, sha256, embedding) "
    "VALUES (:tenant, 'm', :uid, array_fill(0.1::real, ARRAY[CAST(:dim AS integer)])::vector)",
}
PARENTS = {"documents": "document", "chunks": "chunk", "conversations": "conversation"}
# Tables the service reads across tenants only: keys and rate buckets are looked up
# before the tenant is known, the operator's policies and audit log are the operator's.
SYSTEM_TABLES = ("api_keys", "rate_buckets", "tenant_policies", "audit_log")


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:
    with serve_in_thread(settings.model_copy(update={"rate_limit_burst": 10_000})) as url:
        yield url


@pytest.fixture
def tenants(api: str, clean_db: Engine) -> tuple[Client, Client, str, str]:
    """Tenant A with one indexed upload; tenant B with its own. Returns the clients
    and A's document and job ids."""
    a = client_for(api, clean_db, "tenant-a")
    b = client_for(api, clean_db, "tenant-b")
    secret = b"# Merger plan\n\nProject Heron: acquire Tidewater in Q3 for 40 million.\n"
    ids = a.upload("heron.md", secret, "text/markdown", metadata='{"team": "board"}').json()
    assert a.wait_job(ids["job_id"])["status"] == "succeeded"
    own = b.upload("b.md", b"# Tides\n\nTide gauges in the estuary.\n", "text/markdown").json()
    assert b.wait_job(own["job_id"])["status"] == "succeeded"
    return a, b, ids["document_id"], ids["job_id"]


def test_another_tenant_cannot_read_search_delete_or_detect(
    tenants: tuple[Client, Client, str, str],
) -> None:
    a, b, document_id, job_id = tenants
    unknown = str(uuid.uuid4())
    # What B gets for A's document is exactly what it gets for one that never existed.
    for path in (f"/v1/documents/{document_id}", f"/v1/jobs/{job_id}"):
        theirs = b.get(path)
        missing = b.get(path.rsplit("/", 1)[0] + "/" + unknown)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["detail"].replace(path.rsplit("/", 1)[1], "?") == missing.json()[
            "detail"
        ].replace(unknown, "?")
    assert b.delete(f"/v1/documents/{document_id}").status_code == 404
    assert document_id not in {d["document_id"] for d in b.get("/v1/documents").json()["documents"]}
    assert job_id not in {j["id"] for j in b.get("/v1/jobs").json()["jobs"]}

    for body in (
        {},
        {"filters": {"document_id": document_id}},
        {"filters": {"metadata": {"team": "board"}}},
        {"filters": {"metadata": {"tenant": "tenant-a"}}},
        {"filters": {"collection": "uploads"}},
        {"mode": "lexical"},
        {"mode": "dense"},
    ):
        hits = b.search("Project Heron acquire Tidewater merger", k=50, **body)
        assert all(hit["document_id"] != document_id for hit in hits), body
    # A body cannot name its tenant.
    sneaky = b.post("/v1/search", json={"query": "Heron", "tenant": "tenant-a"})
    assert sneaky.status_code == 422

    # A still has everything.
    assert a.get(f"/v1/documents/{document_id}").status_code == 200
    assert a.get(f"/v1/jobs/{job_id}").status_code == 200
    assert job_id in {j["id"] for j in a.get("/v1/jobs").json()["jobs"]}
    assert a.search("Project Heron", filters={"document_id": document_id})
    assert a.search("Project Heron", filters={"metadata": {"team": "board"}})


def test_row_level_security_stops_a_query_that_bypasses_the_repository(
    tenants: tuple[Client, Client, str, str], service_engine: Engine
) -> None:
    _, _, document_id, _ = tenants
    with tenant_scope(service_engine, "tenant-b") as conn:
        for table in TENANT_TABLES:
            leaked = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE tenant = 'tenant-a'")
            ).scalar_one()
            assert leaked == 0, table
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM documents WHERE doc_id = :id"), {"id": document_id}
            ).scalar_one()
            == 0
        )
        touched = conn.execute(sa.text("UPDATE documents SET title = 'x'")).rowcount
        deleted = conn.execute(sa.text("DELETE FROM chunks WHERE tenant = 'tenant-a'")).rowcount
        assert (touched, deleted) == (1, 0)  # B's own document only
        conn.rollback()
    with (
        pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
        tenant_scope(service_engine, "tenant-b") as conn,
    ):
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, tenant, kind, queue, status, max_attempts) "
                "VALUES (gen_random_uuid(), 'tenant-a', 'index_upload', 'ingest', 'queued', 1)"
            )
        )
    with tenant_scope(service_engine, "tenant-b") as conn:
        # The clients' keys exist, but no tenant scope sees a key, its own included.
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one() == 0
    with (
        pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
        tenant_scope(service_engine, "tenant-b") as conn,
    ):
        conn.execute(sa.text("TRUNCATE chunks"))
    with tenant_scope(service_engine, "tenant-a") as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM documents WHERE doc_id = :id"), {"id": document_id}
            ).scalar_one()
            == 1
        )


def test_keys_and_roles(api: str, clean_db: Engine) -> None:
    assert httpx.get(f"{api}/v1/documents").status_code == 401
    missing = httpx.post(f"{api}/v1/search", json={"query": "x"})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    bogus = Client(api, "rl_not-a-real-key")
    assert bogus.get("/v1/documents").status_code == 401

    reader = client_for(api, clean_db, "tenant-a", "reader")
    refused = reader.upload("a.txt", b"hello", "text/plain")
    assert refused.status_code == 403
    assert "reader" in refused.json()["detail"]
    assert reader.get("/v1/documents").status_code == 200
    assert reader.delete(f"/v1/documents/{uuid.uuid4()}").status_code == 403

    key = create_key(clean_db, tenant="tenant-a", role="writer")
    assert authenticate(clean_db, key.secret).tenant == "tenant-a"
    revoke_key(clean_db, key.id)
    with pytest.raises(AuthError):
        authenticate(clean_db, key.secret)
    assert Client(api, key.secret).get("/v1/documents").status_code == 401
    with clean_db.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT key_hash FROM api_keys WHERE id = :id"), {"id": key.id}
        ).scalar_one()
    assert key.secret not in stored
    assert len(stored) == 64


def test_over_the_rate_a_key_gets_429(settings: Settings, clean_db: Engine) -> None:
    limited = settings.model_copy(update={"rate_limit_burst": 3, "rate_limit_per_minute": 6})
    with serve_in_thread(limited) as url:
        client = client_for(url, clean_db, "tenant-a", "reader")
        other = client_for(url, clean_db, "tenant-a", "reader")
        statuses = [client.get("/v1/documents").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = client.get("/v1/documents")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        assert other.get("/v1/documents").status_code == 200, "limits are per key"


@pytest.fixture(params=["postgres", "redis"])
def limiter(request: pytest.FixtureRequest, clean_db: Engine, redis_url: str) -> RateLimiter:
    if request.param == "redis":
        redis.Redis.from_url(redis_url).flushdb()
        return RedisRateLimiter(redis_url, per_minute=60, burst=5)
    return PostgresRateLimiter(clean_db, per_minute=60, burst=5)


def test_token_bucket(limiter: RateLimiter) -> None:
    key = f"k{uuid.uuid4().hex}"
    decisions = [limiter.take(key) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after == 1  # one token a second
    assert limiter.take(f"other{key}").allowed


def _row(tenant: str, n: int, parents: dict[str, Any]) -> dict[str, Any]:
    return {"tenant": tenant, "n": n, "key": f"{tenant}-{n}", "uid": uuid.uuid4(), **parents}


@pytest.fixture
def both_tenants(clean_db: Engine) -> dict[str, dict[str, Any]]:
    """Rows of tenants 'a' and 'b' in every table with row-level security, written by
    the engine's own role. Returns, for each tenant, its parent rows' ids, with an
    answer that has no feedback yet as ``answer``."""
    with clean_db.begin() as conn:
        dim = conn.execute(
            sa.text(
                "SELECT atttypmod FROM pg_attribute "
                "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
            )
        ).scalar_one()
        parents: dict[str, dict[str, Any]] = {}
        for tenant in ("a", "b"):
            mine: dict[str, Any] = {"dim": dim}
            for table in TENANT_TABLES:
                if table == "feedback":
                    mine["answer"] = f"{tenant}-1"
                result = conn.execute(sa.text(TENANT_ROWS[table]), _row(tenant, 1, mine))
                if table in PARENTS:
                    mine[PARENTS[table]] = result.scalar_one()
            # A second answer, without feedback, for a new feedback row to point at.
            conn.execute(sa.text(TENANT_ROWS["answers"]), _row(tenant, 2, mine))
            mine["answer"] = f"{tenant}-2"
            parents[tenant] = mine
    return parents


def _counts(engine: Engine, table: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT tenant, count(*) FROM {table} GROUP BY tenant"))
        return {str(tenant): int(count) for tenant, count in rows}


def test_every_table_with_row_level_security_is_checked(engine: Engine) -> None:
    with engine.connect() as conn:
        enabled = conn.execute(
            sa.text(
                "SELECT relname FROM pg_class "
                "WHERE relrowsecurity AND relnamespace = 'public'::regnamespace"
            )
        ).scalars()
        assert set(enabled) == {*TENANT_TABLES, *SYSTEM_TABLES}
    assert set(TENANT_ROWS) == set(TENANT_TABLES)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_row_level_security_on(
    table: str,
    both_tenants: dict[str, dict[str, Any]],
    clean_db: Engine,
    service_engine: Engine,
) -> None:
    """The service's own role, with no SET ROLE, sees and writes one tenant's rows."""
    before = _counts(clean_db, table)
    assert before.get("a", 0) >= 1
    assert before.get("b", 0) >= 1
    refused = pytest.raises(sa.exc.ProgrammingError, match="row-level security")

    with tenant_scope(service_engine, "a") as conn:
        seen = conn.execute(sa.text(f"SELECT tenant FROM {table}")).scalars().all()
        assert seen == ["a"] * before["a"]
        named = f"SELECT count(*) FROM {table} WHERE tenant = 'b'"
        assert conn.execute(sa.text(named)).scalar_one() == 0
        update = f"UPDATE {table} SET tenant = tenant"
        assert conn.execute(sa.text(f"{update} WHERE tenant = 'b'")).rowcount == 0
        assert conn.execute(sa.text(update)).rowcount == before["a"]  # its own rows only
        assert conn.execute(sa.text(f"DELETE FROM {table} WHERE tenant = 'b'")).rowcount == 0
    with refused, tenant_scope(service_engine, "a") as conn:  # nor hand its rows to b
        conn.execute(sa.text(f"UPDATE {table} SET tenant = 'b'"))
    assert _counts(clean_db, table) == before

    # A row for b that the owner could write (its parents are b's), but a may not.
    row = _row("b", 3, both_tenants["b"])
    with clean_db.connect() as conn, conn.begin() as transaction:
        conn.execute(sa.text(TENANT_ROWS[table]), row)
        transaction.rollback()
    with refused, tenant_scope(service_engine, "a") as conn:
        conn.execute(sa.text(TENANT_ROWS[table]), row)
    assert _counts(clean_db, table) == before
