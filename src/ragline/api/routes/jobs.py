"""Background jobs: their state, progress, attempts and errors."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ragline.api.deps import ReaderDep, ServicesDep
from ragline.api.schemas import JobList, JobOut
from ragline.db.tenancy import tenant_scope
from ragline.errors import NotFound
from ragline.jobs.store import JobStatus, get_job, list_jobs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobOut)
def get(job_id: uuid.UUID, principal: ReaderDep, services: ServicesDep) -> JobOut:
    with tenant_scope(services.engine, principal.tenant) as conn:
        job = get_job(conn, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
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
