"""What keeping a SQL table fresh costs: a first sync, an incremental sync with
nothing changed, one with 1% of the rows edited, and the id listing that finds
deleted rows.

    .venv/bin/python benchmarks/sql_sync.py [--rows 2000] \
        [--url URL (default: RAGLINE_TEST_POSTGRES_URL, see tests/services.py)]

The table holds the first ``--rows`` abstracts of the SciFact corpus
(../shared/benchmarks/scifact) in a PostgreSQL or MariaDB server of your choice;
ragline itself runs on the embedded default, from an empty RAGLINE_HOME, so the
first sync embeds every chunk. Prints a table and writes
benchmarks/results/sql_sync.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl"


def load_rows(count: int) -> list[dict[str, Any]]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    with CORPUS.open() as corpus:
        for n, line in enumerate(corpus):
            if n == count:
                break
            record = json.loads(line)
            rows.append(
                {
                    "id": n + 1,
                    "title": record["title"],
                    "body": record["text"],
                    "updated_at": start + dt.timedelta(seconds=n),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--url", default=None)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "sql_sync.json"
    )
    args = parser.parse_args()
    if args.url is None:  # the test machine's server, started if it is down
        sys.path.insert(0, str(ROOT))
        from tests import services

        args.url = services.sqlalchemy_url(services.ensure_postgres())

    os.environ["RAGLINE_HOME"] = tempfile.mkdtemp(prefix="ragline-bench-")
    from ragline.config import get_settings
    from ragline.db.engine import get_engine
    from ragline.ingest.pipeline import Pipeline
    from ragline.sources.build import build_source
    from ragline.sources.store import SourceSpec, create_source, save_state

    source_db = sa.create_engine(args.url)
    table = f"bench_articles_{uuid.uuid4().hex[:8]}"
    naive = source_db.dialect.name != "postgresql"
    when = "timestamptz" if not naive else "datetime(6)"
    rows = load_rows(args.rows)
    with source_db.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} (id integer PRIMARY KEY, title text NOT NULL, "
                f"body text NOT NULL, updated_at {when} NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {table} (id, title, body, updated_at) "
                "VALUES (:id, :title, :body, :updated_at)"
            ),
            [
                {**row, "updated_at": row["updated_at"].replace(tzinfo=None)} if naive else row
                for row in rows
            ],
        )

    settings = get_settings()
    started = time.perf_counter()
    pipeline = Pipeline.from_settings(settings)
    engine = get_engine(settings)
    startup = time.perf_counter() - started
    with engine.begin() as conn:
        record = create_source(
            conn,
            tenant=settings.tenant,
            spec=SourceSpec(
                name="bench",
                kind="sql",
                collection="bench",
                config={
                    "url": args.url,
                    "table": table,
                    "title_columns": ["title"],
                    "text_columns": ["body"],
                    "updated_column": "updated_at",
                },
            ),
        )
    state: dict[str, Any] = {}
    results: dict[str, Any] = {}

    def run(label: str, *, full: bool = False) -> None:
        nonlocal state
        _, _, source = build_source(record, settings, engine)
        t0 = time.perf_counter()
        report = pipeline.sync(source, collection="bench", full=full, state=state)
        seconds = time.perf_counter() - t0
        state = report.state or state
        with engine.begin() as conn:
            save_state(conn, record.id, state)
        results[label] = {
            "seconds": round(seconds, 3),
            **{
                key: getattr(report, key)
                for key in (
                    "added",
                    "updated",
                    "unchanged",
                    "deleted",
                    "failed",
                    "chunks",
                    "embedded",
                    "embedding_calls",
                )
            },
        }
        print(
            f"{label:<22} {seconds:8.2f} s  added {report.added:5}  updated {report.updated:4}  "
            f"unchanged {report.unchanged:5}  deleted {report.deleted:3}  embedded "
            f"{report.embedded:5} in {report.embedding_calls} calls"
        )

    run("first_sync")
    results["first_sync"]["rows_per_second"] = round(
        args.rows / results["first_sync"]["seconds"], 1
    )
    run("unchanged_incremental")
    edited = rows[::100]  # 1% of the rows
    latest = rows[-1]["updated_at"] + dt.timedelta(minutes=1)
    with source_db.begin() as conn:
        for row in edited:
            conn.execute(
                sa.text(f"UPDATE {table} SET body = :body, updated_at = :at WHERE id = :id"),
                {
                    "id": row["id"],
                    "body": row["body"] + " (Corrected.)",
                    "at": latest.replace(tzinfo=None) if naive else latest,
                },
            )
    run("one_percent_edited")
    with source_db.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {table} WHERE id % 100 = 7"))
    run("id_listing_full_sync", full=True)
    with source_db.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {table}"))

    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.machine(),
            "python": platform.python_version(),
        },
        "source_database": source_db.dialect.name,
        "rows": args.rows,
        "corpus": "SciFact abstracts (title + text), first rows of corpus.jsonl",
        "startup_seconds": round(startup, 2),
        **results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
