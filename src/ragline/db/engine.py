"""Database engines: the configured PostgreSQL, or the embedded one.

The service connects as a login role that does not own the tables, so row-level
security binds every query it makes; the schema is migrated by the owner (the embedded
server's superuser, or ``RAGLINE_DATABASE_OWNER_URL``) before the first connection::

    from ragline.db.engine import get_engine, owner_engine

    engine = get_engine()          # the service's role; migrated on first use
    with engine.begin() as conn:   # the system scope: every tenant (see tenancy.py)
        ...
    owner_engine()                 # the owner: migrations, schema changes, tests

With only ``RAGLINE_DATABASE_URL`` set, that one role migrates and serves, and the
service logs a warning: row-level security then binds it only inside ``tenant_scope``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pgvector.psycopg import register_vector
from sqlalchemy.engine import Engine, make_url

from ragline.config import Settings, get_settings
from ragline.db.embedded import embedded_urls
from ragline.db.migrate import upgrade
from ragline.db.tenancy import RLS_BINDS, SYSTEM_SCOPE
from ragline.errors import DatabaseError
from ragline.logs import get_logger
from ragline.modelspec import model_spec

log = get_logger(__name__)

_lock = threading.Lock()
_engines: dict[tuple[str, str], Engine] = {}

# Whether the connected role is exempt from row-level security on ragline's tables:
# a superuser, a BYPASSRLS role, or a member of the tables' owner.
_EXEMPT = sa.text(
    """
    SELECT r.rolsuper OR r.rolbypassrls
           OR pg_has_role(current_user, c.relowner, 'USAGE')
    FROM pg_roles r, pg_class c
    WHERE r.rolname = current_user AND c.oid = 'public.documents'::regclass
    """
)


@dataclass(frozen=True, slots=True)
class DatabaseUrls:
    """Where the service connects (``service``) and who migrates (``owner``)."""

    service: str
    owner: str


def database_urls(settings: Settings) -> DatabaseUrls:
    if settings.database_url is None:
        embedded = embedded_urls(settings.home)
        return DatabaseUrls(service=embedded.service, owner=embedded.owner)
    service = _psycopg_url(settings.database_url, "RAGLINE_DATABASE_URL")
    if settings.database_owner_url is None:
        return DatabaseUrls(service=service, owner=service)
    return DatabaseUrls(
        service=service,
        owner=_psycopg_url(settings.database_owner_url, "RAGLINE_DATABASE_OWNER_URL"),
    )


def database_url(settings: Settings) -> str:
    """The URL the service connects with."""
    return database_urls(settings).service


def get_engine(settings: Settings | None = None) -> Engine:
    """The service's engine for ``settings`` (cached per URL), with the schema brought
    up to date. Its connections start in the system scope (``tenancy.py``)."""
    return _cached(settings or get_settings(), service=True)


def owner_engine(settings: Settings | None = None) -> Engine:
    """An engine of the tables' owner, for migrations and schema work (never for
    requests): row-level security does not bind it outside ``tenant_scope``."""
    return _cached(settings or get_settings(), service=False)


def _cached(settings: Settings, *, service: bool) -> Engine:
    urls = database_urls(settings)
    key = ("service", urls.service) if service else ("owner", urls.owner)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            _migrate(urls.owner, settings)
            engine = _create(key[1], settings, service=service)
            _engines[key] = engine
    return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _psycopg_url(value: str, name: str) -> str:
    url = make_url(value)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername != "postgresql+psycopg":
        raise DatabaseError(
            f"{name} must be a PostgreSQL URL (postgresql://...), got {url.drivername}"
        )
    return url.render_as_string(hide_password=False)


def _unreachable(url: str, e: sa.exc.OperationalError) -> DatabaseError:
    return DatabaseError(
        f"cannot connect to PostgreSQL at {make_url(url).render_as_string()}: {e.orig}. "
        "Check RAGLINE_DATABASE_URL (and RAGLINE_DATABASE_OWNER_URL), or unset them to use "
        "the embedded database."
    )


def _migrate(owner_url: str, settings: Settings) -> None:
    bootstrap = sa.create_engine(owner_url, poolclass=sa.pool.NullPool)
    try:
        with bootstrap.connect() as conn:
            upgrade(conn, model_spec(settings))
    except sa.exc.OperationalError as e:
        raise _unreachable(owner_url, e) from e
    finally:
        bootstrap.dispose()


def _create(url: str, settings: Settings, *, service: bool) -> Engine:
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with probe.connect() as conn:
            exempt = bool(conn.execute(_EXEMPT).scalar_one())
    except sa.exc.OperationalError as e:
        raise _unreachable(url, e) from e
    finally:
        probe.dispose()
    if service and exempt:
        log.warning(
            "database_service_runs_as_owner",
            user=make_url(url).username,
            hint="row-level security binds it only inside tenant scopes; give the service "
            "its own role (docs/database.md) and set RAGLINE_DATABASE_OWNER_URL to the owner",
        )

    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        execution_options={RLS_BINDS: not exempt},
    )
    session = [f"SET hnsw.ef_search = {int(settings.hnsw_ef_search)}"]
    if service:
        session.append(f"SET ragline.scope = '{SYSTEM_SCOPE}'")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        register_vector(dbapi_connection)
        with dbapi_connection.cursor() as cursor:
            for statement in session:
                cursor.execute(statement)
        dbapi_connection.commit()

    return engine
