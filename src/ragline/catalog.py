"""What the index holds: documents by state, chunks, failures, recent sync runs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.db.migrate import index_meta
from ragline.ingest.runs import list_runs


def index_status(engine: Engine, tenant: str, *, runs: int = 10) -> dict[str, Any]:
    with engine.connect() as conn:
        states: dict[str, int] = dict(
            conn.execute(
                sa.text("SELECT status, count(*) FROM documents WHERE tenant = :t GROUP BY status"),
                {"t": tenant},
            ).all()
        )
        collections = [
            dict(row)
            for row in conn.execute(
                sa.text(
                    """
                    SELECT collection,
                           count(*) FILTER (WHERE status = 'active') AS documents,
                           coalesce(sum(chunk_count) FILTER (WHERE status <> 'deleted'), 0)
                               AS chunks
                    FROM documents WHERE tenant = :t GROUP BY collection ORDER BY collection
                    """
                ),
                {"t": tenant},
            ).mappings()
        ]
        chunks = conn.execute(
            sa.text("SELECT count(*) FROM chunks WHERE tenant = :t"), {"t": tenant}
        ).scalar_one()
        failed = [
            {**row, "last_synced_at": row["last_synced_at"].isoformat()}
            for row in conn.execute(
                sa.text(
                    """
                    SELECT collection, doc_id, last_error AS reason, last_synced_at
                    FROM documents WHERE tenant = :t AND status = 'failed'
                    ORDER BY collection, doc_id
                    """
                ),
                {"t": tenant},
            ).mappings()
        ]
        recent = list_runs(conn, tenant=tenant, limit=runs)
        meta = index_meta(conn)
    return {
        "tenant": tenant,
        "documents": {state: states.get(state, 0) for state in ("active", "failed", "deleted")},
        "chunks": chunks,
        "collections": collections,
        "failed": failed,
        "runs": recent,
        "embedding_model": meta.get("embedding_model"),
        "embedding_dim": int(meta["embedding_dim"]) if "embedding_dim" in meta else None,
        "embedder": meta.get("embedder"),
    }
