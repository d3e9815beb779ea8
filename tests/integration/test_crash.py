"""A process killed in the middle of a document (an ingest, or a server running its job)
leaves nothing half-indexed, and the work is taken over."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.pipeline import Pipeline
from tests.integration.service import client_for, free_port, start_long_job, start_process, wait_for
from tests.integration.test_api import assert_indexed_once

LONG_DOC = "long-report.md"


def write_long_document(folder: Path) -> None:
    """About 300 chunks of distinct text, so that embedding it takes many batches."""
    rng = random.Random(5)
    words = [
        "river",
        "estuary",
        "sonde",
        "logger",
        "oxygen",
        "nitrate",
        "turbidity",
        "conductivity",
        "salinity",
        "tide",
        "sensor",
        "cable",
        "bracket",
        "modem",
        "battery",
        "panel",
        "firmware",
        "alarm",
        "wiper",
        "calibration",
        "sample",
        "depth",
        "pressure",
        "temperature",
        "station",
        "telemetry",
        "backup",
        "storage",
        "report",
        "season",
    ]
    sections = []
    for n in range(60):
        body = "\n\n".join(
            " ".join(rng.choice(words) for _ in range(rng.randint(60, 110))).capitalize() + "."
            for _ in range(4)
        )
        sections.append(f"## Site visit {n}\n\n{body}")
    (folder / LONG_DOC).write_text("# Long report\n\n" + "\n\n".join(sections))


def visible_chunks(engine: Engine, doc_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id "
                    "WHERE d.doc_id = :doc_id"
                ),
                {"doc_id": doc_id},
            ).scalar_one()
        )


@pytest.mark.slow
def test_kill_mid_document_then_resume(pipeline: Pipeline, corpus: Path, engine: Engine) -> None:
    write_long_document(corpus)
    env = {
        **os.environ,
        "RAGLINE_LOG_LEVEL": "debug",
        "RAGLINE_LOG_FORMAT": "json",
        "RAGLINE_WRITE_BATCH_SIZE": "16",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ragline", "ingest", str(corpus), "--collection", "samples"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    batches_seen = 0
    deadline = time.monotonic() + 300
    try:
        for line in process.stderr:
            if time.monotonic() > deadline:
                break
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("event") == "chunks_written" and event.get("doc_id") == LONG_DOC:
                batches_seen += 1
                if batches_seen == 3:  # well inside the document's ~20 batches
                    process.send_signal(signal.SIGKILL)
                    break
    finally:
        process.kill()
        process.wait(timeout=30)
    assert batches_seen == 3, "the ingest never reached the long document"

    # 48 chunks were written inside the killed transaction: none may be visible.
    assert visible_chunks(engine, LONG_DOC) == 0
    with engine.connect() as conn:
        ledger = conn.execute(
            sa.text("SELECT status FROM documents WHERE doc_id = :d"), {"d": LONG_DOC}
        ).scalar()
        run_status = conn.execute(
            sa.text("SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    assert ledger is None
    assert run_status == "running"

    report = pipeline.sync(FileSource(corpus), collection="samples")

    assert report.failed == 0
    assert report.added >= 1
    total = visible_chunks(engine, LONG_DOC)
    with engine.connect() as conn:
        ledger_count, distinct_ordinals = conn.execute(
            sa.text(
                "SELECT d.chunk_count, count(DISTINCT c.ordinal) FROM documents d "
                "JOIN chunks c ON c.document_id = d.id WHERE d.doc_id = :d GROUP BY d.chunk_count"
            ),
            {"d": LONG_DOC},
        ).one()
        interrupted = conn.execute(
            sa.text("SELECT status, errors FROM sync_runs ORDER BY id LIMIT 1")
        ).one()
    assert total == ledger_count == distinct_ordinals > 48
    # Embeddings of the batches done before the kill were kept by the cache.
    assert report.embedded <= report.chunks - 48
    assert interrupted.status == "failed"
    assert interrupted.errors == [{"reason": "interrupted"}]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_jobs_left_running_by_a_killed_server_are_taken_over(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL the server mid-job; the next server takes the job over once its lease
    runs out, and the document ends indexed exactly once. Its JSON logs carry the
    request and job ids and the tenant. (No other server runs jobs in this module: one
    would race the second server for the job.)"""
    env = {"RAGLINE_JOB_LEASE_SECONDS": "3"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = start_process(["serve", "--port", str(port)], env)
    try:
        wait_for(lambda: _ready(url), timeout=90, what="the first server")
        writer = client_for(url, clean_db, "acme")
        ids = start_long_job(writer)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    logs = tmp_path / "second.log"
    json_logs = {**env, "RAGLINE_LOG_FORMAT": "json", "RAGLINE_LOG_LEVEL": "info"}
    second = start_process(["serve", "--port", str(port)], json_logs, log=logs)
    try:
        wait_for(lambda: _ready(url), timeout=90, what="the second server")
        job = writer.wait_job(ids["job_id"], timeout=180)
        assert job["status"] == "succeeded", job
        # Taken over at least once; one more attempt when the killed server's database
        # session still held the document's lock (it ends with the statement it ran).
        assert job["attempts"] >= 2, job
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert_indexed_once(clean_db, ids["document_id"])
    events = [json.loads(line) for line in logs.read_text().splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "job_succeeded"]
    assert [(e["job_id"], e["tenant"]) for e in finished] == [(ids["job_id"], "acme")]
    polls = [e for e in events if e["event"] == "request" and e["route"] == "/v1/jobs/{job_id}"]
    assert polls
    assert all(e["tenant"] == "acme" and len(e["request_id"]) == 32 for e in polls)
