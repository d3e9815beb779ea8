"""Helpers of the source tests: configure a source, queue its sync, run the job here."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.handlers import JOB_KINDS
from ragline.jobs.dispatch import PollingDispatcher
from ragline.jobs.executor import JobExecutor
from ragline.jobs.store import Job, get_job
from ragline.reach import Allowance
from ragline.sources.service import enqueue_sync
from ragline.sources.store import SourceRecord, SourceSpec, create_source, get_source
from ragline.tenants import TenantPolicy, set_policy

# What the tests' local servers need: hosts on this machine (the Confluence, S3 and
# database servers, the brokers), by name and by address.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def local_allowance(**fields: Any) -> Allowance:
    """An allowance reaching this machine's servers, plus ``fields``."""
    return Allowance(hosts=LOCAL_HOSTS, **fields)


def allow(engine: Engine, tenant: str = "default", **fields: Any) -> Allowance:
    """Set ``tenant``'s allowance as the operator would: this machine's servers, plus
    ``fields`` (env=(...), folders=(...), ambient_credentials=True...)."""
    allowance = local_allowance(**fields)
    with engine.begin() as conn:
        set_policy(conn, tenant, TenantPolicy(allowance=allowance), actor="cli")
    return allowance


def add_source(engine: Engine, tenant: str = "default", **spec: Any) -> SourceRecord:
    with engine.begin() as conn:
        return create_source(conn, tenant=tenant, spec=SourceSpec(**spec))


def reload(engine: Engine, record: SourceRecord) -> SourceRecord:
    with engine.connect() as conn:
        return get_source(conn, record.id)


def run_job(settings: Settings, job: Job) -> Job:
    """Run a queued job to its end in this process (retries included); its final row."""
    executor = JobExecutor(settings, get_engine(settings), kinds=JOB_KINDS)
    while executor.execute_id(job.id, worker="test") is not None:
        pass
    with executor.engine.connect() as conn:
        done = get_job(conn, job.id)
    assert done is not None
    return done


def sync_now(
    settings: Settings, engine: Engine, record: SourceRecord, *, full: bool = False
) -> dict[str, Any]:
    """Queue a sync of ``record``, run it, and return its result (the run's report)."""
    job = enqueue_sync(
        engine, PollingDispatcher(), reload(engine, record), full=full, trigger="manual"
    )
    done = run_job(settings, job)
    assert done.status == "succeeded", done.error
    assert done.result is not None
    return done.result
