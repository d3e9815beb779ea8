"""Jobs on real Celery workers (separate processes) with Redis and with RabbitMQ:
the upload flow, and a worker killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from amqp.exceptions import ChannelError
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.jobs.celery_app import create_celery
from ragline.jobs.dispatch import CeleryDispatcher
from ragline.jobs.store import QUEUES, create_job
from ragline.uploads.jobs import INDEX_UPLOAD
from tests.integration.service import (
    Client,
    client_for,
    serve_in_thread,
    start_long_job,
    start_process,
    wait_for,
)
from tests.integration.test_api import assert_indexed_once

# Each broker by the fixture that gives this module its own database or virtual host.
BROKERS = {"redis": "redis_url", "rabbitmq": "amqp_url"}
# Redis hands an unacknowledged job to another worker after this long.
VISIBILITY_TIMEOUT = 8

pytestmark = pytest.mark.slow


@pytest.fixture(params=list(BROKERS), scope="module")
def broker(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(BROKERS[request.param])
    settings = Settings(broker_url=url)
    try:
        with create_celery(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=2, timeout=3)
    except Exception as e:  # the test machine's broker is down: say so, loudly
        pytest.fail(f"{request.param} is not reachable at {url}: {e}")
    create_celery(settings).control.purge()
    return url


def worker_env(broker: str) -> dict[str, str]:
    return {
        "RAGLINE_BROKER_URL": broker,
        "RAGLINE_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    }


@pytest.fixture(scope="module")
def api(settings: Settings, broker: str) -> Iterator[str]:
    with serve_in_thread(
        settings.model_copy(
            update={
                "broker_url": broker,
                "broker_visibility_timeout": VISIBILITY_TIMEOUT,
                "rate_limit_burst": 10_000,
            }
        )
    ) as url:
        yield url


@pytest.fixture
def worker(broker: str) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(broker)
    yield process
    stop(process)


def start_worker(broker: str) -> subprocess.Popen[bytes]:
    return start_process(["worker", "--concurrency", "1"], worker_env(broker))


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def queue_sizes(settings: Settings) -> dict[str, int]:
    """Messages waiting in each queue (Redis keeps no empty queue: those count 0)."""
    sizes = {}
    with create_celery(settings).connection_for_read() as conn:
        for name in QUEUES:
            try:
                sizes[name] = conn.channel().queue_declare(queue=name, passive=True).message_count
            except ChannelError:
                sizes[name] = 0
    return sizes


def test_a_job_is_published_to_its_own_queue_once(broker: str, engine: Engine) -> None:
    settings = Settings(broker_url=broker)
    app = create_celery(settings)
    app.control.purge()
    with engine.begin() as conn:
        job = create_job(
            conn,
            tenant="acme",
            kind=INDEX_UPLOAD.name,
            queue=INDEX_UPLOAD.queue,
            payload={"upload_id": "x"},
            max_attempts=1,
        )
    CeleryDispatcher(settings).dispatch(job)
    try:
        assert queue_sizes(settings) == {"ingest": 1, "sync": 0, "default": 0}
    finally:
        app.control.purge()


def test_upload_indexed_by_a_celery_worker(
    api: str, clean_db: Engine, worker: subprocess.Popen[bytes]
) -> None:
    client = client_for(api, clean_db, "acme")
    ready = client.get("/readyz").json()
    assert ready["checks"]["jobs"] == "broker reachable"
    ids = client.upload(
        "wiper.md", b"# Wiper\n\nThe sonde wiper parks at noon.\n", "text/markdown"
    ).json()
    job = client.wait_job(ids["job_id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["queue"] == "ingest"
    assert job["attempts"] == 1
    hits = client.search("when does the wiper park", filters={"document_id": ids["document_id"]})
    assert hits
    assert {hit["document_id"] for hit in hits} == {ids["document_id"]}

    corrupt = client.upload("broken.pdf", b"%PDF-1.7\n\x00\x01garbage", "application/pdf").json()
    failed = client.wait_job(corrupt["job_id"], timeout=60)
    assert failed["status"] == "failed"
    assert failed["error"]
    assert worker.poll() is None, "the worker survives a bad document"


def test_a_killed_worker_job_is_delivered_again_and_indexed_once(
    api: str, broker: str, clean_db: Engine
) -> None:
    client: Client = client_for(api, clean_db, "acme")
    first = start_worker(broker)
    try:
        ids = start_long_job(client)
    finally:
        stop(first, signal.SIGKILL)
    second = start_worker(broker)
    try:
        job = client.wait_job(ids["job_id"], timeout=240)
    finally:
        stop(second)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2, job
    assert_indexed_once(clean_db, ids["document_id"])


def test_a_job_on_a_celery_worker_is_cancelled_within_seconds(
    api: str, broker: str, clean_db: Engine
) -> None:
    """The worker polls the job's row while it runs: DELETE /v1/jobs/{id} stops it at
    its next checkpoint (small write batches, so that one comes often)."""
    client = client_for(api, clean_db, "acme")
    worker = start_process(
        ["worker", "--concurrency", "1"], {**worker_env(broker), "RAGLINE_WRITE_BATCH_SIZE": "4"}
    )
    try:
        # The worker loads its model with its first job: a checkpoint comes after that.
        warm = client.upload("tide.txt", b"Tide tables load at midnight.\n", "text/plain")
        assert client.wait_job(warm.json()["job_id"], timeout=120)["status"] == "succeeded"
        ids = start_long_job(client)
        asked = time.monotonic()
        assert client.delete(f"/v1/jobs/{ids['job_id']}").status_code == 202
        job = wait_for(
            lambda: (found := client.job(ids["job_id"]))["status"] != "running" and found,
            timeout=60,
            what="the job to stop",
        )
        took = time.monotonic() - asked
        assert job["status"] == "cancelled", job
        assert took < 5
        after = client.upload("wiper.md", b"# Wiper\n\nIt parks at noon.\n", "text/markdown")
        assert client.wait_job(after.json()["job_id"], timeout=120)["status"] == "succeeded"
    finally:
        stop(worker)
