"""The embedded PostgreSQL (16, with pgvector) that runs when no database URL is set.

It comes from the ``pgserver`` package: a private server in ``$RAGLINE_HOME/pgdata``,
listening on a Unix socket only. Processes that ask for the same data directory share
one server; it stops when the last of them exits. Every connection needs a password
(``credentials.py``): the superuser migrates, the service connects as its own role::

    urls = embedded_urls(settings.home)
    urls.owner      # the superuser: migrations, roles and grants
    urls.service    # ragline_service: row-level security applies to it
"""

from __future__ import annotations

import atexit
import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from ragline.db.credentials import (
    DATABASE_NAME,
    Passwords,
    secure,
    service_uri,
    superuser_uri,
)
from ragline.errors import DatabaseError

_lock = threading.Lock()
_servers: dict[Path, tuple[Any, Passwords]] = {}


@dataclass(frozen=True, slots=True)
class EmbeddedUrls:
    """SQLAlchemy URLs of the embedded server's ragline database."""

    owner: str
    service: str


def embedded_urls(home: Path) -> EmbeddedUrls:
    """Start (or join) the embedded server under ``home``; its URLs, passwords included."""
    pgdata = (home / "pgdata").absolute()
    with _lock:
        entry = _servers.get(pgdata)
        if entry is None:
            entry = _servers[pgdata] = _start(pgdata, home.absolute())
    server, passwords = entry
    return EmbeddedUrls(
        owner=_sqlalchemy(superuser_uri(server, passwords, DATABASE_NAME)),
        service=_sqlalchemy(service_uri(server, passwords)),
    )


def _sqlalchemy(uri: str) -> str:
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)


def _start(pgdata: Path, home: Path) -> tuple[Any, Passwords]:
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it
            # falls back to /tmp/runtime-$UID, which is fine, and says so.
            warnings.simplefilter("ignore")
            from pgserver import PostgresServer, get_server  # type: ignore[attr-defined]
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
    try:
        with PostgresServer._lock:
            passwords = secure(server, home)
    except psycopg.Error as e:
        raise DatabaseError(
            f"could not secure the embedded PostgreSQL in {pgdata}: {e}. See {pgdata / 'log'}"
        ) from e
    # Runs before pgserver's own exit handler (registered earlier; atexit is LIFO), so
    # that a user killed meanwhile does not keep the server running after we leave.
    atexit.register(_forget_dead_processes, pgdata)
    return server, passwords


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
