"""The embedded PostgreSQL (16, with pgvector) that runs when no database URL is set.

It comes from the ``pgserver`` package: a private server in ``$RAGLINE_HOME/pgdata``,
listening on a Unix socket only. Processes that ask for the same data directory share
one server; it stops when the last of them exits.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import threading
import warnings
from pathlib import Path
from typing import Any

import psutil

from ragline.errors import DatabaseError

DATABASE_NAME = "ragline"

_lock = threading.Lock()
_servers: dict[Path, Any] = {}


def embedded_url(home: Path) -> str:
    """Start (or join) the embedded server under ``home`` and return its SQLAlchemy URL."""
    pgdata = (home / "pgdata").absolute()
    with _lock:
        server = _servers.get(pgdata)
        if server is None:
            server = _start(pgdata)
            _servers[pgdata] = server
    _ensure_database(server)
    uri: str = server.get_uri(database=DATABASE_NAME)
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)


def _start(pgdata: Path) -> Any:
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it
            # falls back to /tmp/runtime-$UID, which is fine, and says so.
            warnings.simplefilter("ignore")
            from pgserver import get_server  # type: ignore[attr-defined]
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise DatabaseError(
            "the embedded database needs the 'pgserver' package: pip install pgserver, "
            "or set RAGLINE_DATABASE_URL to a PostgreSQL server with pgvector"
        ) from e
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_processes(pgdata)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as e:
        log = pgdata / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {e}\nserver log (tail):\n{tail}"
        ) from e
    # Runs before pgserver's own exit handler (registered earlier; atexit is LIFO), so
    # that a user killed meanwhile does not keep the server running after we leave.
    atexit.register(_forget_dead_processes, pgdata)
    return server


def _forget_dead_processes(pgdata: Path) -> None:
    """Drop processes that died without saying goodbye (SIGKILL, OOM) from pgserver's
    list of users of the server, so that it still stops when the last live one exits."""
    from pgserver import PostgresServer  # type: ignore[attr-defined]

    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        if not handles.exists():
            return
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _ensure_database(server: Any) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if exists is None:
            # Another process may create it between the check and here; that is fine.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
