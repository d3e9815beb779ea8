"""Jobs stopped on purpose: a time limit, cancellation (by the job's id or by deleting
its document), and a job that keeps stopping its worker given up after its attempts."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.audit import events
from ragline.cancel import checkpoint
from ragline.config import Settings
from ragline.db.tenancy import tenant_scope
from ragline.jobs.executor import JobExecutor, JobKind
from ragline.jobs.runner import JobRunner
from ragline.jobs.store import Job, JobStore, create_job, get_job, request_cancel
from ragline.uploads.metadata import MAX_METADATA_DEPTH
from tests.integration.service import (
    Client,
    client_for,
    serve_in_thread,
    start_long_job,
    wait_for,
)

SPIN_SECONDS = 30.0
calls: dict[str, int] = {}


def spin(executor: JobExecutor, job: Job) -> dict[str, Any]:
    """Work that checks in often and would take ``SPIN_SECONDS`` if nothing stopped it."""
    calls["spin"] = calls.get("spin", 0) + 1
    ends = time.monotonic() + SPIN_SECONDS
    while time.monotonic() < ends:
        checkpoint()
        time.sleep(0.02)
    return {"spun": SPIN_SECONDS}


def quick(executor: JobExecutor, job: Job) -> dict[str, Any]:
    calls["quick"] = calls.get("quick", 0) + 1
    return {"done": True}


SPIN = JobKind("test_spin", queue="default", handler=spin)
QUICK = JobKind("test_quick", queue="default", handler=quick)


def queue(engine: Engine, kind: JobKind, *, max_attempts: int = 3) -> Job:
    with tenant_scope(engine, "acme") as conn:
        return create_job(
            conn,
            tenant="acme",
            kind=kind.name,
            queue=kind.queue,
            payload={},
            max_attempts=max_attempts,
        )


def job_now(engine: Engine, job_id: uuid.UUID) -> Job:
    with engine.connect() as conn:
        job = get_job(conn, job_id)
    assert job is not None
    return job


@pytest.fixture
def runner(settings: Settings, clean_db: Engine) -> Iterator[JobRunner]:
    calls.clear()
    executor = JobExecutor(settings, clean_db, kinds=[SPIN, QUICK], cancel_poll=0.2)
    runner = JobRunner(executor, threads=1, lease=30, poll=0.1)
    yield runner
    runner.stop()


def test_a_job_past_its_time_limit_fails_with_the_reason_and_is_not_retried(
    settings: Settings, clean_db: Engine
) -> None:
    limited = settings.model_copy(update={"job_time_limit": 1})
    executor = JobExecutor(limited, clean_db, kinds=[SPIN])
    job = queue(clean_db, SPIN)
    started = time.monotonic()
    assert executor.execute_id(job.id, worker="test") is None
    elapsed = time.monotonic() - started
    done = job_now(clean_db, job.id)
    assert done.status == "failed", done
    assert done.error is not None
    assert "ran past its time limit of 1 s" in done.error
    assert done.attempts == 1
    assert elapsed < 5


def test_a_running_job_is_cancelled_within_seconds_and_the_runner_goes_on(
    runner: JobRunner, clean_db: Engine
) -> None:
    waiting = queue(clean_db, SPIN)
    with tenant_scope(clean_db, "acme") as conn:
        cancelled = request_cancel(conn, waiting.id, "cancelled by test")
    assert cancelled is not None
    assert cancelled.status == "cancelled"

    running = queue(clean_db, SPIN)
    runner.start()
    wait_for(lambda: job_now(clean_db, running.id).status == "running", timeout=10, what="start")
    asked = time.monotonic()
    with tenant_scope(clean_db, "acme") as conn:
        request_cancel(conn, running.id, "cancelled by key:7")
    wait_for(lambda: job_now(clean_db, running.id).status != "running", timeout=10, what="the stop")
    took = time.monotonic() - asked
    done = job_now(clean_db, running.id)
    assert (done.status, done.error, done.attempts) == ("cancelled", "cancelled by key:7", 1)
    assert took < 5
    assert calls["spin"] == 1, "the job cancelled while it waited never ran"

    after = queue(clean_db, QUICK)
    wait_for(lambda: job_now(clean_db, after.id).status == "succeeded", timeout=10, what="next")
    assert job_now(clean_db, waiting.id).status == "cancelled"


def _left_by_a_dead_worker(engine: Engine, job_id: uuid.UUID) -> None:
    """Claim the job as a server that then died: no heartbeat for an hour."""
    claimed = JobStore(engine).claim_next(worker="inprocess:gone:1:dead")
    assert claimed is not None
    assert claimed.id == job_id
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": job_id},
        )


def test_a_job_interrupted_on_its_last_attempt_fails_with_the_reason(
    runner: JobRunner, clean_db: Engine
) -> None:
    job = queue(clean_db, SPIN, max_attempts=2)
    _left_by_a_dead_worker(clean_db, job.id)
    assert JobStore(clean_db).requeue(worker_like="inprocess:%", stale_after=30) == 1
    assert job_now(clean_db, job.id).status == "queued"

    _left_by_a_dead_worker(clean_db, job.id)
    runner.start()  # takes back what a stopped server left running
    wait_for(lambda: job_now(clean_db, job.id).status != "running", timeout=10, what="recovery")
    time.sleep(0.5)
    done = job_now(clean_db, job.id)
    assert done.status == "failed", done
    assert done.error is not None
    assert done.error.startswith("interrupted 2 times")
    assert done.attempts == 2
    assert "spin" not in calls, "a job out of attempts is not run again"


def test_a_redelivered_job_out_of_attempts_fails_rather_than_running_again(
    clean_db: Engine,
) -> None:
    job = queue(clean_db, SPIN, max_attempts=1)
    store = JobStore(clean_db)
    assert store.begin(job.id, worker="celery:a") is not None
    # The worker died; the broker delivers the message again.
    assert store.begin(job.id, worker="celery:b") is None
    done = job_now(clean_db, job.id)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.startswith("interrupted 1 times")


# Over HTTP, with uploads indexed by the in-process runner.


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:
    # Small write batches: the pipeline checks for a stop between batches, and a batch
    # of the local model takes seconds on a busy machine.
    update = {"rate_limit_burst": 10_000, "write_batch_size": 4}
    with serve_in_thread(settings.model_copy(update=update)) as url:
        yield url


@pytest.fixture
def writer(api: str, clean_db: Engine) -> Client:
    return client_for(api, clean_db, "acme", "writer")


def _until_finished(client: Client, job_id: str, timeout: float) -> tuple[dict[str, Any], float]:
    started = time.monotonic()

    def finished() -> dict[str, Any] | None:
        job = client.job(job_id)
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, timeout=timeout, what=f"job {job_id} to end")
    return job, time.monotonic() - started


def test_delete_cancels_a_running_upload_job_within_5_s(
    api: str, writer: Client, clean_db: Engine
) -> None:
    ids = start_long_job(writer)
    asked = time.monotonic()
    answer = writer.delete(f"/v1/jobs/{ids['job_id']}")
    assert answer.status_code == 202, answer.text
    job, _ = _until_finished(writer, ids["job_id"], timeout=60)
    took = time.monotonic() - asked
    print(f"DELETE /v1/jobs -> cancelled in {took:.2f} s")
    assert job["status"] == "cancelled", job
    assert job["error"].startswith("cancelled by key:")
    assert took < 5
    document = writer.get(f"/v1/documents/{ids['document_id']}").json()
    assert (document["status"], document["chunks"]) == ("failed", 0)
    with clean_db.connect() as conn:
        logged = events(conn, tenant="acme", action="job.cancel")
    assert [(e.target, e.actor.startswith("key:")) for e in logged] == [(ids["job_id"], True)]

    fine = writer.upload("after.md", b"# After\n\nThe runner goes on.\n", "text/markdown").json()
    assert writer.wait_job(fine["job_id"])["status"] == "succeeded"


def test_deleting_a_document_cancels_its_running_job(writer: Client, clean_db: Engine) -> None:
    ids = start_long_job(writer)
    asked = time.monotonic()
    answer = writer.delete(f"/v1/documents/{ids['document_id']}")
    took = time.monotonic() - asked
    assert answer.status_code == 204, answer.text
    job, _ = _until_finished(writer, ids["job_id"], timeout=30)
    assert job["status"] == "cancelled", job
    assert "its document was deleted" in job["error"]
    assert took < 10
    assert writer.get(f"/v1/documents/{ids['document_id']}").status_code == 404
    with clean_db.connect() as conn:
        chunks = conn.execute(
            sa.text(
                "SELECT count(*) FROM documents d JOIN chunks c ON c.document_id = d.id "
                "WHERE d.doc_id = :d"
            ),
            {"d": ids["document_id"]},
        ).scalar_one()
        logged = events(conn, tenant="acme", action="document.delete")
    assert chunks == 0
    assert [e.target for e in logged] == [ids["document_id"]]


def test_who_may_cancel_a_job(api: str, writer: Client, clean_db: Engine) -> None:
    ids = writer.upload("tide.txt", b"Tide tables load at midnight.\n", "text/plain").json()
    assert writer.wait_job(ids["job_id"])["status"] == "succeeded"
    reader = client_for(api, clean_db, "acme", "reader")
    stranger = client_for(api, clean_db, "globex", "writer")
    assert reader.delete(f"/v1/jobs/{ids['job_id']}").status_code == 403
    assert stranger.delete(f"/v1/jobs/{ids['job_id']}").status_code == 404
    assert stranger.delete(f"/v1/jobs/{uuid.uuid4()}").status_code == 404
    finished = writer.delete(f"/v1/jobs/{ids['job_id']}")
    assert finished.status_code == 409
    assert "already succeeded" in finished.json()["detail"]
    assert writer.job(ids["job_id"])["status"] == "succeeded"


def test_upload_metadata_nested_too_deep_is_refused(writer: Client) -> None:
    deep = "[" * 5000 + "]" * 5000
    for metadata in (json.dumps({"a": json.loads("[" * 100 + "]" * 100)}), f'{{"a": {deep}}}'):
        answer = writer.upload("a.txt", b"text", "text/plain", metadata=metadata)
        assert answer.status_code == 422, answer.text
        assert f"deeper than {MAX_METADATA_DEPTH}" in answer.json()["detail"]
    huge = json.dumps({"k": "x" * 100_000})
    assert writer.upload("a.txt", b"text", "text/plain", metadata=huge).status_code == 422
    fine = writer.upload("a.txt", b"text", "text/plain", metadata='{"team": {"name": "ops"}}')
    assert fine.status_code == 202
