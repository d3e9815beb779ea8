"""PostgreSQL advisory locks, keyed by text: the one place their SQL lives.

    with engine.begin() as conn:
        xact_lock(conn, f"enqueue:{source_id}")       # held until the transaction ends

    with session_lock(engine, key) as held:           # held while the block runs
        if not held:
            raise SyncInProgress(...)

Keys are hashed to PostgreSQL's 64-bit lock space with ``hashtextextended``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_XACT = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_TRY_XACT = sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")
_LOCK = sa.text("SELECT pg_advisory_lock(hashtextextended(:key, 0))")
_TRY = sa.text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))")


def xact_lock(conn: sa.Connection, key: str) -> None:
    """Wait for the lock ``key``; it is released when ``conn``'s transaction ends."""
    conn.execute(_XACT, {"key": key})


def try_xact_lock(conn: sa.Connection, key: str) -> bool:
    """Take the lock ``key`` for ``conn``'s transaction if it is free; whether it was."""
    return bool(conn.execute(_TRY_XACT, {"key": key}).scalar_one())


@contextmanager
def session_lock(engine: Engine | sa.Connection, key: str, *, wait: bool = False) -> Iterator[bool]:
    """Hold the lock ``key`` on a connection of its own (or on the connection given)
    while the block runs; yields whether it was taken. With ``wait`` it always is."""
    with _connection(engine) as conn:
        held = True
        if wait:
            conn.execute(_LOCK, {"key": key})
        else:
            held = bool(conn.execute(_TRY, {"key": key}).scalar_one())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(_UNLOCK, {"key": key})
                conn.commit()


@contextmanager
def _connection(target: Engine | sa.Connection) -> Iterator[sa.Connection]:
    if isinstance(target, sa.Connection):
        yield target
    else:
        with target.connect() as conn:
            yield conn
