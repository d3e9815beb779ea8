"""Background jobs: their state, progress, attempts and errors; cancelling one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ragline.api.deps import ReaderDep, ServicesDep
from ragline.api.schemas import JobList, JobOut
from ragline.audit import record
from ragline.db.tenancy import tenant_scope
from ragline.errors import Conflict, NotFound
from ragline.jobs.store import JobStatus, get_job, list_jobs, request_cancel

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobOut)
def get(job_id: uuid.UUID, principal: ReaderDep, services: ServicesDep) -> JobOut:
    with tenant_scope(services.engine, principal.tenant) as conn:
        job = get_job(conn, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return JobOut(**job.as_dict())


@router.delete("/{job_id}", status_code=202, response_model=JobOut)
def cancel(job_id: uuid.UUID, principal: ReaderDep, services: ServicesDep) -> JobOut:
    """Cancel a job (writer). A waiting job ends ``cancelled`` at once; a running one is
    stopped within a few seconds (poll it): its document keeps the version it had."""
    principal.require("writer")
    reason = f"cancelled by {principal.actor}"
    with tenant_scope(services.engine, principal.tenant) as conn:
        before = get_job(conn, job_id)
        if before is None:
            raise NotFound(f"no job {job_id}")
        if before.status in ("succeeded", "failed"):
            raise Conflict(f"job {job_id} has already {before.status}; there is nothing to cancel")
        job = request_cancel(conn, job_id, reason)
        assert job is not None
        if before.status != "cancelled":
            record(
                conn,
                tenant=principal.tenant,
                actor=principal.actor,
                action="job.cancel",
                target=str(job_id),
                details={"kind": job.kind, "status": before.status},
            )
    return JobOut(**job.as_dict())


@router.get("", response_model=JobList)
def recent(
    principal: ReaderDep,
    services: ServicesDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    """The tenant's most recent jobs, newest first."""
    with tenant_scope(services.engine, principal.tenant) as conn:
        jobs = list_jobs(conn, status=status, limit=limit)
    return JobList(jobs=[JobOut(**job.as_dict()) for job in jobs])
