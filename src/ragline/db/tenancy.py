"""Tenant-scoped connections: the second wall around each tenant's data.

Every query a request makes about tenant data runs in ``tenant_scope``: a transaction
switched to the role ``ragline_app``, for which PostgreSQL's row-level security shows
and accepts only the rows of the tenant named in the setting ``ragline.tenant``. A
query that forgets its ``WHERE tenant = ...`` (or names another tenant) still sees
only its own tenant's rows::

    with tenant_scope(engine, "acme") as conn:
        conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one()  # acme's only

Ingestion, migrations and the job runner use the engine's own role, which owns the
tables and is not subject to the policies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

APP_ROLE = "ragline_app"

_ENTER = sa.text(
    f"SELECT set_config('role', '{APP_ROLE}', true), set_config('ragline.tenant', :tenant, true)"
)


@contextmanager
def tenant_scope(engine: Engine, tenant: str) -> Iterator[sa.Connection]:
    """A transaction that can read and write ``tenant``'s rows only; committed on exit."""
    if not tenant:
        raise ValueError("a tenant scope needs a tenant")
    with engine.begin() as conn:
        conn.execute(_ENTER, {"tenant": tenant})
        yield conn
