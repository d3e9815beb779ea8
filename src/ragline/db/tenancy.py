"""Scopes of a connection: the second wall around each tenant's data.

The service connects as a role that row-level security binds (``ragline_service``, a
member of ``ragline_app``, which holds the grants and the policies). Every policy shows
and accepts a row when its tenant is the setting ``ragline.tenant``, or when the
setting ``ragline.scope`` is ``all``:

- ``tenant_scope(engine, tenant)``: a transaction that sees and writes only
  ``tenant``'s rows, whatever its queries say. Every request about tenant data runs
  in one.
- ``system_scope(engine)``: a transaction that sees every tenant, for the work the
  service does across tenants on purpose (claiming jobs, scheduling syncs, the
  operator's audit log and policies, metrics).
- The service's engine (``get_engine``) starts each connection in the system scope
  (a session default); a connection of the role that chose no scope sees no row.

::

    with tenant_scope(engine, "acme") as conn:
        conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one()  # acme's only
    with system_scope(engine) as conn:
        conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one()  # everyone's

An engine whose role is exempt from row-level security (the owner, when one URL both
migrates and serves) is switched to ``ragline_app`` inside ``tenant_scope``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

APP_ROLE = "ragline_app"
SYSTEM_SCOPE = "all"
# Execution option of an engine whose role row-level security binds without SET ROLE.
RLS_BINDS = "ragline_rls_binds"

_TENANT = sa.text(
    "SELECT set_config('ragline.tenant', :tenant, true), "
    "set_config('ragline.scope', 'tenant', true)"
)
_AS_APP = sa.text(f"SELECT set_config('role', '{APP_ROLE}', true)")
_SYSTEM = sa.text(
    f"SELECT set_config('ragline.scope', '{SYSTEM_SCOPE}', true), "
    "set_config('ragline.tenant', '', true)"
)


@contextmanager
def tenant_scope(engine: Engine, tenant: str) -> Iterator[sa.Connection]:
    """A transaction that can read and write ``tenant``'s rows only; committed on exit."""
    if not tenant:
        raise ValueError("a tenant scope needs a tenant")
    with engine.begin() as conn:
        if not conn.get_execution_options().get(RLS_BINDS, False):
            conn.execute(_AS_APP)
        conn.execute(_TENANT, {"tenant": tenant})
        yield conn


@contextmanager
def system_scope(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that sees every tenant's rows; committed on exit."""
    with engine.begin() as conn:
        conn.execute(_SYSTEM)
        yield conn
