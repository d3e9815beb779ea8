"""Celery Beat with the database scheduler: schedules read from PostgreSQL, syncs run
by real Celery workers on Redis."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from tests.integration.service import start_process, wait_for
from tests.integration.sources_util import add_source, allow
from tests.integration.test_sources import NOTES


@pytest.mark.slow
def test_celery_beat_reads_schedules_from_the_database_and_workers_run_them(
    clean_db: Engine, tmp_path: Path, redis_url: str
) -> None:
    from ragline.jobs.celery_app import create_celery

    create_celery(Settings(broker_url=redis_url)).control.purge()
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in NOTES.items():
        (folder / name).write_text(text)
    allow(clean_db, folders=(str(folder),))
    env = {"RAGLINE_BROKER_URL": redis_url, "RAGLINE_SCHEDULER_INTERVAL": "0.5"}
    processes = [
        start_process(["beat"], env, log=tmp_path / "beat.log"),
        start_process(["worker", "--queues", "sync"], env, log=tmp_path / "worker.log"),
    ]
    try:
        # Added after Beat started: it is picked up at Beat's next look.
        record = add_source(
            clean_db,
            name="notes",
            kind="files",
            collection="notes",
            config={"path": str(folder)},
            schedule="* * * * * */2",
        )

        def scheduled_runs() -> list[Any] | None:
            with clean_db.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT j.worker, r.trigger, r.added FROM sync_runs r "
                        "JOIN jobs j ON j.id = r.job_id WHERE r.source_id = :id "
                        "AND r.status = 'succeeded' ORDER BY r.id"
                    ),
                    {"id": record.id},
                ).all()
            return rows if len(rows) >= 2 else None

        rows = wait_for(scheduled_runs, timeout=90, what="two runs scheduled by Celery Beat")
        assert all(row.worker.startswith("celery:") for row in rows)
        assert {row.trigger for row in rows} == {"schedule"}
        assert rows[0].added == 3
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
