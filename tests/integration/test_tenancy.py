"""Tenant isolation through every endpoint and in the database itself (row-level
security), API keys and roles, and rate limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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

REDIS_URL = "redis://127.0.0.1:6379/14"
TENANT_TABLES = (
    *("documents", "chunks", "postings", "bm25_stats", "sync_runs", "uploads", "jobs"),
    *("conversations", "answers", "feedback", "answer_cache"),
)


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
    tenants: tuple[Client, Client, str, str], clean_db: Engine
) -> None:
    _, _, document_id, _ = tenants
    with tenant_scope(clean_db, "tenant-b") as conn:
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
        tenant_scope(clean_db, "tenant-b") as conn,
    ):
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, tenant, kind, queue, status, max_attempts) "
                "VALUES (gen_random_uuid(), 'tenant-a', 'index_upload', 'ingest', 'queued', 1)"
            )
        )
    with (
        pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
        tenant_scope(clean_db, "tenant-b") as conn,
    ):
        conn.execute(sa.text("SELECT * FROM api_keys"))
    with tenant_scope(clean_db, "tenant-a") as conn:
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
def limiter(request: pytest.FixtureRequest, clean_db: Engine) -> RateLimiter:
    if request.param == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        return RedisRateLimiter(REDIS_URL, per_minute=60, burst=5)
    return PostgresRateLimiter(clean_db, per_minute=60, burst=5)


def test_token_bucket(limiter: RateLimiter) -> None:
    key = f"k{uuid.uuid4().hex}"
    decisions = [limiter.take(key) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after == 1  # one token a second
    assert limiter.take(f"other{key}").allowed
