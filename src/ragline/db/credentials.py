"""Who may connect to the embedded PostgreSQL, and with which password.

pgserver initialises its data directory with ``trust`` authentication: anything that
reaches the socket may connect as the superuser without a password. ``secure``
replaces that, in place and on every start, with ``scram-sha-256`` for every role and
every connection, and keeps two generated passwords in ``$RAGLINE_HOME/secrets/
postgres.json`` (a folder of mode 0700, a file of mode 0600): the superuser's, which
migrates the schema, and the service's login role's, which is neither the owner of the
tables nor exempt from row-level security::

    passwords = secure(server, home)                 # under pgserver's process lock
    passwords.service                                # the password of SERVICE_ROLE
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ragline.errors import DatabaseError
from ragline.logs import get_logger

SUPERUSER = "postgres"
SERVICE_ROLE = "ragline_service"
APP_ROLE = "ragline_app"  # the group role that holds the grants and the policies
DATABASE_NAME = "ragline"

log = get_logger(__name__)

_HBA = """\
# Written by ragline: every connection proves a password; nothing is trusted.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  scram-sha-256
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
"""


@dataclass(frozen=True, slots=True)
class Passwords:
    superuser: str
    service: str


def secrets_file(home: Path) -> Path:
    return home / "secrets" / "postgres.json"


def secure(server: Any, home: Path) -> Passwords:
    """Make the server under ``home`` require passwords, and its roles and database
    exist. Call with pgserver's process lock held: it may rewrite ``pg_hba.conf``."""
    pgdata = Path(server.pgdata)
    hba = pgdata / "pg_hba.conf"
    trusting = _trusts(hba)
    passwords = _load_or_create(secrets_file(home), may_create=trusting)
    if trusting:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            _set_password(conn, SUPERUSER, passwords.superuser)
        hba.write_text(_HBA)
        with psycopg.connect(superuser_uri(server, passwords), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        _wait_until_refused(server)
        log.info("embedded_database_secured", pgdata=str(pgdata))
    with psycopg.connect(superuser_uri(server, passwords), autocommit=True) as conn:
        _ensure_database(conn)
        _ensure_service_role(conn, passwords.service, reset=trusting)
    return passwords


def superuser_uri(server: Any, passwords: Passwords, database: str | None = None) -> str:
    """libpq URI of the superuser on the embedded server (``postgresql://``)."""
    uri: str = server.get_postmaster_info().get_uri(user=SUPERUSER, database=database)
    return uri.replace(f"{SUPERUSER}:@", f"{SUPERUSER}:{passwords.superuser}@", 1)


def service_uri(server: Any, passwords: Passwords) -> str:
    """libpq URI of the service's login role on the ragline database."""
    uri: str = server.get_postmaster_info().get_uri(user=SERVICE_ROLE, database=DATABASE_NAME)
    return uri.replace(f"{SERVICE_ROLE}:@", f"{SERVICE_ROLE}:{passwords.service}@", 1)


def _trusts(hba: Path) -> bool:
    lines = hba.read_text().splitlines()
    return any("trust" in line.split("#", 1)[0].split() for line in lines)


def _load_or_create(path: Path, *, may_create: bool) -> Passwords:
    if path.exists():
        path.parent.chmod(0o700)
        path.chmod(0o600)
        try:
            stored = json.loads(path.read_text())
            return Passwords(superuser=stored[SUPERUSER], service=stored[SERVICE_ROLE])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DatabaseError(
                f"{path} is not a valid passwords file ({e}). Restore it from a backup; "
                "the embedded database cannot be reached without it."
            ) from e
    if not may_create:
        raise DatabaseError(
            f"the embedded database requires passwords, but {path} is missing. Restore it "
            "from a backup, or move the data directory away to start a new index."
        )
    passwords = Passwords(superuser=secrets.token_urlsafe(32), service=secrets.token_urlsafe(32))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({SUPERUSER: passwords.superuser, SERVICE_ROLE: passwords.service}, out)
    temporary.replace(path)
    return passwords


def _set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
    )


def _wait_until_refused(server: Any, timeout: float = 10.0) -> None:
    """The postmaster reloads pg_hba.conf on SIGHUP, asynchronously: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            nowhere = str(Path(server.pgdata) / "no-passfile")
            psycopg.connect(server.get_uri(), passfile=nowhere, connect_timeout=2).close()
        except psycopg.OperationalError:
            return
        if time.monotonic() > deadline:
            raise DatabaseError(
                f"the embedded database in {server.pgdata} still accepts connections without "
                "a password after pg_hba.conf was rewritten; see its log"
            )
        time.sleep(0.05)


def _ensure_database(conn: psycopg.Connection[Any]) -> None:
    exists = conn.execute(
        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
    ).fetchone()
    if exists is None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


def _ensure_service_role(conn: psycopg.Connection[Any], password: str, *, reset: bool) -> None:
    """The login role the service connects as: no superuser, no BYPASSRLS, no DDL; it
    holds what ``APP_ROLE`` is granted (migration 0011) and its policies bind it."""
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", ([APP_ROLE, SERVICE_ROLE],)
    ).fetchall()
    roles = {row[0] for row in rows}
    if APP_ROLE not in roles:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(APP_ROLE)))
    if SERVICE_ROLE not in roles:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(SERVICE_ROLE)))
        reset = True
    if reset:
        conn.execute(
            sql.SQL(
                "ALTER ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
                "NOREPLICATION INHERIT PASSWORD {}"
            ).format(sql.Identifier(SERVICE_ROLE), sql.Literal(password))
        )
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), sql.Identifier(SERVICE_ROLE))
        )
