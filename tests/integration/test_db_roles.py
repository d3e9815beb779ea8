"""Least privilege in PostgreSQL: the embedded server trusts no one, the service's role
owns nothing and row-level security binds it without SET ROLE, and the scopes it can
work in are the ones ``ragline.db.tenancy`` documents."""

from __future__ import annotations

import stat

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from ragline.audit import events, record
from ragline.config import Settings
from ragline.db.credentials import secrets_file
from ragline.db.engine import database_urls, get_engine
from ragline.db.tenancy import system_scope, tenant_scope

DENIED = pytest.raises(sa.exc.ProgrammingError, match=r"permission denied|must be owner")


def _socket_dir(engine: Engine) -> str:
    return str(make_url(engine.url).query["host"])


@pytest.mark.parametrize("user", ["postgres", "ragline_service"])
def test_the_embedded_server_refuses_a_connection_without_a_password(
    engine: Engine, settings: Settings, user: str
) -> None:
    """What a tenant's sql source pointed at the service's own socket used to get:
    the superuser, with no password."""
    nowhere = settings.home / "no-passfile"
    probe = sa.create_engine(
        f"postgresql+psycopg://{user}@/ragline?host={_socket_dir(engine)}&passfile={nowhere}",
        poolclass=sa.pool.NullPool,
    )
    with pytest.raises(sa.exc.OperationalError, match="password"), probe.connect() as conn:
        conn.execute(sa.text("SELECT pg_read_file('/etc/passwd')"))
    wrong = make_url(engine.url).set(password="guessed")
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        sa.create_engine(wrong, poolclass=sa.pool.NullPool).connect()


def test_the_embedded_server_was_secured_in_place(engine: Engine, settings: Settings) -> None:
    """pgserver created this data directory with trust; the first start rewrote it."""
    hba = settings.home / "pgdata" / "pg_hba.conf"
    methods = {line.split()[-1] for line in hba.read_text().splitlines() if line[:1].isalpha()}
    assert methods == {"scram-sha-256"}
    passwords = secrets_file(settings.home)
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert stat.S_IMODE(passwords.parent.stat().st_mode) == 0o700
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW password_encryption")).scalar_one() == "scram-sha-256"


def test_the_service_role_is_not_the_owner_nor_privileged(service_engine: Engine) -> None:
    with service_engine.connect() as conn:
        user, owner, superuser, bypass, create = conn.execute(
            sa.text(
                "SELECT current_user, t.tableowner, r.rolsuper, r.rolbypassrls, "
                "has_schema_privilege('public', 'CREATE') "
                "FROM pg_tables t, pg_roles r "
                "WHERE t.tablename = 'documents' AND r.rolname = current_user"
            )
        ).one()
    assert user == "ragline_service"
    assert (owner, superuser, bypass, create) == ("postgres", False, False, False)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_ls_dir('.')",
        "COPY documents TO '/tmp/ragline-leak'",
        "TRUNCATE documents",
        "TRUNCATE rate_buckets",
        "DROP TABLE chunks",
        "ALTER TABLE documents DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE documents NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON documents",
        "CREATE TABLE stash (secret text)",
        "UPDATE index_meta SET value = 'x'",
        "DELETE FROM alembic_version",
        "SET ROLE postgres",
        "CREATE SCHEMA stash",
        "CREATE ROLE intruder SUPERUSER",
    ],
)
def test_the_service_role_cannot(service_engine: Engine, statement: str) -> None:
    with DENIED, service_engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_the_audit_log_is_append_only(clean_db: Engine, service_engine: Engine) -> None:
    with tenant_scope(service_engine, "a") as conn:
        record(conn, tenant="a", actor="key:1", action="source.add", target="crm")
        assert events(conn) == []  # a tenant scope cannot read the log
    with system_scope(service_engine) as conn:
        record(conn, tenant=None, actor="cli", action="policy.set", target="a")
        assert [e.action for e in events(conn, limit=2)] == ["policy.set", "source.add"]
    for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
        with DENIED, system_scope(service_engine) as conn:
            conn.execute(sa.text(statement))
    with (
        pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
        tenant_scope(service_engine, "a") as conn,
    ):
        record(conn, tenant="b", actor="key:1", action="source.add", target="crm")


@pytest.fixture
def two_tenants(clean_db: Engine) -> Engine:
    with clean_db.begin() as conn:
        for tenant in ("a", "b"):
            conn.execute(
                sa.text(
                    "INSERT INTO documents (tenant, collection, doc_id, source, status) "
                    "VALUES (:t, 'c', 'doc', 's', 'active')"
                ),
                {"t": tenant},
            )
    return clean_db


def _tenants(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.text("SELECT tenant FROM documents ORDER BY tenant")).scalars())


def test_scopes_of_the_service_role(two_tenants: Engine, service_engine: Engine) -> None:
    # The service's engine starts in the system scope: the job runner, the scheduler
    # and the operator's commands see every tenant.
    with service_engine.connect() as conn:
        assert _tenants(conn) == ["a", "b"]
    with tenant_scope(service_engine, "b") as conn:
        assert _tenants(conn) == ["b"]
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one() == 0
    with service_engine.connect() as conn:  # the scope ended with its transaction
        assert _tenants(conn) == ["a", "b"]
    with system_scope(service_engine) as conn:
        assert _tenants(conn) == ["a", "b"]

    # The same role, connected by anything but ragline's engine, chose no scope: it
    # sees no tenant's row and writes none.
    bare = sa.create_engine(service_engine.url, poolclass=sa.pool.NullPool)
    with bare.connect() as conn:
        assert _tenants(conn) == []
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one() == 0
    with (
        pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
        bare.begin() as conn,
    ):
        conn.execute(
            sa.text(
                "INSERT INTO documents (tenant, collection, doc_id, source, status) "
                "VALUES ('a', 'c', 'planted', 's', 'active')"
            )
        )


@pytest.fixture
def one_url_settings(settings: Settings, engine: Engine) -> Settings:
    """An external database given by one URL, the owner's: it migrates and serves."""
    owner = make_url(engine.url).render_as_string(hide_password=False)
    return settings.model_copy(update={"database_url": owner, "database_owner_url": None})


def test_one_url_migrates_and_serves_and_tenant_scopes_still_hold(
    one_url_settings: Settings, two_tenants: Engine
) -> None:
    urls = database_urls(one_url_settings)
    assert urls.owner == urls.service
    served = get_engine(one_url_settings)
    with served.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "postgres"
    with tenant_scope(served, "a") as conn:
        assert _tenants(conn) == ["a"]


def test_two_urls_split_the_owner_from_the_service(
    settings: Settings, engine: Engine, service_engine: Engine, two_tenants: Engine
) -> None:
    """How an external database is configured (docs/database.md), on the embedded one."""
    split = settings.model_copy(
        update={
            "database_url": service_engine.url.render_as_string(hide_password=False),
            "database_owner_url": engine.url.render_as_string(hide_password=False),
        }
    )
    urls = database_urls(split)
    assert make_url(urls.owner).username == "postgres"
    served = get_engine(split)
    with served.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "ragline_service"
        assert _tenants(conn) == ["a", "b"]
    with tenant_scope(served, "a") as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "ragline_service"
        assert _tenants(conn) == ["a"]
