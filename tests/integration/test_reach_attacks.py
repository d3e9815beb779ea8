"""A tenant admin's sources reach only what the operator allowed, when they run.

Each attack goes through the HTTP API with a tenant admin key. The source is added
through the API when the service accepts it, else stored as it would have been before
the operator's policy changed; either way its sync must fail with ``OutsideAllowance``
and its reason, having reached nothing. Then the operator allows a host, a database
and a folder for one tenant, and only that tenant's sources reach them.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.reach import Allowance
from ragline.tenants import TenantPolicy, set_policy
from tests import services
from tests.integration.confluence_server import Wiki, confluence_server
from tests.integration.service import Client, client_for, serve_in_thread
from tests.integration.sources_util import add_source, allow

TOKEN_ENV = "TEST_REACH_WIKI_TOKEN"
TOKEN = "pat-" + uuid.uuid4().hex


class Attacker(BaseHTTPRequestHandler):
    """Answers 404 to anything, and records every request it gets."""

    requests: ClassVar[list[str]] = []

    def _record(self) -> None:
        Attacker.requests.append(f"{self.command} {self.path}\n{self.headers}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_PUT = do_POST = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[str]:
    Attacker.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:
    with serve_in_thread(settings.model_copy(update={"rate_limit_burst": 10_000})) as url:
        yield url


def tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def attempt(engine: Engine, admin: Client, tenant: str, kind: str, config: dict[str, Any]) -> str:
    """Add the source through the API (or store it as if added before the policy
    changed), sync it through the API; the job's error."""
    name = f"s{uuid.uuid4().hex[:8]}"
    body = {"name": name, "kind": kind, "collection": "loot", "config": config}
    created = admin.post("/v1/sources", json=body)
    if created.status_code == 201:
        source_id = created.json()["id"]
    else:
        assert created.status_code in (403, 422), created.text
        record = add_source(engine, tenant=tenant, **body)
        source_id = str(record.id)
    queued = admin.post(f"/v1/sources/{source_id}/sync", json={"full": True})
    assert queued.status_code == 202, queued.text
    job = admin.wait_job(queued.json()["job_id"])
    assert job["status"] == "failed"
    error: str = job["error"]
    assert refused_by_allowance(error), error
    return error


def refused_by_allowance(error: str) -> bool:
    """Whether a job's error is an ``OutsideAllowance`` refusal (what they all say)."""
    return "ragline tenant allow" in error or "belongs to the service itself" in error


def sql_config(**url: str) -> dict[str, Any]:
    return {"table": "api_keys", "text_columns": ["id"], "updated_column": "created_at", **url}


def test_an_sql_source_cannot_read_the_services_own_database(
    api: str, clean_db: Engine, settings: Settings
) -> None:
    who = tenant()
    admin = client_for(api, clean_db, who, "admin")
    socket_url = f"postgresql+psycopg://postgres@/ragline?host={settings.home}/pgdata"
    error = attempt(clean_db, admin, who, "sql", sql_config(url=socket_url))
    assert "Unix socket" in error
    error = attempt(clean_db, admin, who, "sql", sql_config(url_env="RAGLINE_DATABASE_URL"))
    assert "RAGLINE_DATABASE_URL belongs to the service" in error
    with clean_db.connect() as conn:
        loot = conn.execute(
            sa.text("SELECT count(*) FROM documents WHERE collection = 'loot'")
        ).scalar_one()
    assert loot == 0


def test_a_confluence_source_cannot_send_a_server_variable_anywhere(
    api: str, clean_db: Engine, settings: Settings, attacker: str
) -> None:
    who = tenant()
    allow(clean_db, who)  # even a host the tenant may reach gets no variable of the service
    admin = client_for(api, clean_db, who, "admin")
    secret = str(settings.home)
    for config in (
        {"base_url": attacker, "space": "X", "token_env": "RAGLINE_HOME"},
        {"base_url": attacker, "space": "X", "token_env": "RAGLINE_HOME", "username": "me"},
        {"base_url": attacker, "space": "X", "token_env": "HOME"},
    ):
        error = attempt(clean_db, admin, who, "confluence", config)
        assert "ragline tenant allow" in error or "belongs to the service" in error
    basic = base64.b64encode(f"me:{secret}".encode()).decode()
    assert not any(secret in r or basic in r for r in Attacker.requests)
    assert Attacker.requests == []


def test_an_s3_source_cannot_send_a_server_variable_anywhere(
    api: str, clean_db: Engine, attacker: str
) -> None:
    who = tenant()
    admin = client_for(api, clean_db, who, "admin")
    config = {
        "bucket": "loot",
        "endpoint_url": attacker,
        "access_key_id_env": "RAGLINE_HOME",
        "secret_access_key_env": "PATH",
    }
    attempt(clean_db, admin, who, "s3", config)
    allow(clean_db, who, env=("PATH",))
    attempt(clean_db, admin, who, "s3", config)
    assert Attacker.requests == []
    stranger = tenant()  # the default allowance: an internal endpoint is refused
    error = attempt(
        clean_db,
        client_for(api, clean_db, stranger, "admin"),
        stranger,
        "s3",
        {"bucket": "loot", "endpoint_url": attacker},
    )
    assert "is not a host this tenant's sources may reach" in error
    assert Attacker.requests == []


def test_an_internal_address_is_refused_before_any_connection(
    api: str, clean_db: Engine, attacker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    who = tenant()
    admin = client_for(api, clean_db, who, "admin")
    with clean_db.begin() as conn:  # the token variable is allowed; the host is not
        set_policy(conn, who, TenantPolicy(allowance=Allowance(env=(TOKEN_ENV,))), actor="cli")
    port = attacker.rsplit(":", 1)[1]
    for base_url in (attacker, f"http://localhost:{port}", f"http://2130706433:{port}"):
        error = attempt(
            clean_db,
            admin,
            who,
            "confluence",
            {"base_url": base_url, "space": "X", "token_env": TOKEN_ENV},
        )
        assert "HTTP 404" not in error
        assert "404" not in error
        assert "127.0.0.1" not in error.replace(base_url, "")
    assert Attacker.requests == []


def test_the_operator_allows_a_host_a_database_and_a_folder_for_one_tenant_only(
    api: str, clean_db: Engine, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    allowed, other = tenant(), tenant()
    db_url = services.sqlalchemy_url(postgres_url)
    table = f"reach_{uuid.uuid4().hex[:8]}"
    db = sa.create_engine(db_url)
    with db.begin() as conn:
        conn.execute(
            sa.text(f"CREATE TABLE {table} (id int PRIMARY KEY, body text, u timestamptz)")
        )
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, 'Grease the pump bearings.', now())"))
    folder, outside = tmp_path / "shared", tmp_path / "private"
    folder.mkdir()
    outside.mkdir()
    (folder / "pumps.md").write_text("# Pumps\n\nGrease the impeller bearings.\n")
    (outside / "keys.md").write_text("# Keys\n\nThe payroll key is 0451.\n")
    (folder / "keys.md").symlink_to(outside / "keys.md")
    wiki = Wiki(token=TOKEN)
    wiki.add_page("ENG", "Runbooks", "<p>Where the runbooks live.</p>")
    try:
        with confluence_server(wiki) as site:
            with clean_db.begin() as conn:
                allowance = Allowance(
                    public_hosts=False,
                    url_prefixes=(site + "/",),
                    databases=(services.libpq_url(db_url),),
                    folders=(str(folder),),
                    env=(TOKEN_ENV,),
                )
                set_policy(conn, allowed, TenantPolicy(allowance=allowance), actor="cli")
            sources: dict[str, dict[str, Any]] = {
                "confluence": {"base_url": site, "space": "ENG", "token_env": TOKEN_ENV},
                "sql": {
                    "url": db_url,
                    "table": table,
                    "text_columns": ["body"],
                    "updated_column": "u",
                },
                "files": {"path": str(folder)},
            }
            for kind, config in sources.items():
                done = sync(api, clean_db, allowed, kind, config)
                assert done["status"] == "succeeded", (kind, done["error"])
                assert done["result"]["added"] == 1, (kind, done["result"])
                refused = sync(api, clean_db, other, kind, config)
                assert refused["status"] == "failed"
                assert refused_by_allowance(refused["error"])
    finally:
        with db.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        db.dispose()


def sync(api: str, engine: Engine, who: str, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Store a source of ``who`` (as the operator would add it) and sync it over HTTP."""
    record = add_source(
        engine,
        tenant=who,
        name=f"s{uuid.uuid4().hex[:8]}",
        kind=kind,
        collection=f"c-{kind}",
        config=config,
    )
    admin = client_for(api, engine, who, "admin")
    queued = admin.post(f"/v1/sources/{record.id}/sync", json={"full": True})
    assert queued.status_code == 202, queued.text
    return admin.wait_job(queued.json()["job_id"])
