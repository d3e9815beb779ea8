"""Configured sources: add, list, show, remove, sync (admin); event notifications
(writer); and the reports of sync runs (reader). The roles are checked by
``SourceService``, which the command line uses too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from ragline.api.deps import ReaderDep, ServicesDep
from ragline.api.schemas import (
    JsonObject,
    RunList,
    RunOut,
    SourceIn,
    SourceList,
    SourceOut,
    SyncIn,
    SyncQueued,
)
from ragline.sources.store import SourceSpec

router = APIRouter(tags=["sources"])


@router.post("/v1/sources", response_model=SourceOut, status_code=201)
def add(body: SourceIn, principal: ReaderDep, services: ServicesDep) -> SourceOut:
    """Configure a source (admin)."""
    spec = SourceSpec(**{**body.model_dump(), "environments": tuple(body.environments)})
    return SourceOut(**services.sources.add(principal, spec).as_dict())


@router.get("/v1/sources", response_model=SourceList)
def listing(principal: ReaderDep, services: ServicesDep) -> SourceList:
    """The tenant's sources (admin)."""
    records = services.sources.listing(principal)
    return SourceList(sources=[SourceOut(**record.as_dict()) for record in records])


@router.get("/v1/sources/{ref}", response_model=SourceOut)
def show(ref: str, principal: ReaderDep, services: ServicesDep) -> SourceOut:
    """A source by id or name (admin)."""
    return SourceOut(**services.sources.get(principal, ref).as_dict())


@router.delete("/v1/sources/{ref}", status_code=204)
def remove(
    ref: str,
    principal: ReaderDep,
    services: ServicesDep,
    keep_documents: bool = False,
) -> Response:
    """Remove a source and, unless ``keep_documents``, what it indexed (admin)."""
    services.sources.remove(principal, ref, keep_documents=keep_documents)
    return Response(status_code=204)


@router.post("/v1/sources/{ref}/sync", response_model=SyncQueued, status_code=202)
def sync(
    ref: str, principal: ReaderDep, services: ServicesDep, body: SyncIn | None = None
) -> SyncQueued:
    """Queue a sync now (admin); a sync of the same sort already waiting is reused. A
    stream source is consumed, not synced: 409."""
    job = services.sources.sync(principal, ref, full=body.full if body is not None else False)
    return SyncQueued(job_id=str(job.id))


@router.post("/v1/sources/{ref}/events", response_model=SyncQueued, status_code=202)
async def events(
    ref: str,
    principal: ReaderDep,
    services: ServicesDep,
    notification: Annotated[JsonObject, Body(description="An event notification message.")],
) -> SyncQueued:
    """Take an event notification (an S3 ObjectCreated/ObjectRemoved message, or its
    SNS envelope) and queue a sync of exactly the objects it names (writer)."""

    def queue() -> SyncQueued:
        job, count = services.sources.notify(principal, ref, notification)
        return SyncQueued(job_id=str(job.id) if job is not None else None, events=count)

    return await run_in_threadpool(queue)


@router.get("/v1/runs", response_model=RunList)
def runs(
    principal: ReaderDep,
    services: ServicesDep,
    source: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> RunList:
    """Sync run reports, newest first; of one source (id or name) if given."""
    found = services.sources.runs(principal, source=source, status=status, limit=limit)
    return RunList(runs=[RunOut(**run) for run in found])


@router.get("/v1/runs/{run_id}", response_model=RunOut)
def run(
    run_id: Annotated[int, Path(ge=1, le=2**63 - 1)], principal: ReaderDep, services: ServicesDep
) -> RunOut:
    return RunOut(**services.sources.run(principal, run_id))
