"""Configured sources (admin): add, list, show, remove, sync; event notifications
(writer); and the reports of sync runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from ragline.api.deps import AdminDep, ReaderDep, ServicesDep, WriterDep
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
from ragline.db.tenancy import tenant_scope
from ragline.errors import ConfigurationError
from ragline.sources.kinds import get_kind
from ragline.sources.runs import get_run, list_runs
from ragline.sources.service import enqueue_sync, remove_source
from ragline.sources.store import SourceSpec, create_source, get_source, list_sources

router = APIRouter(tags=["sources"])


def _invalid(error: ConfigurationError) -> HTTPException:
    return HTTPException(status_code=422, detail=str(error))


@router.post("/v1/sources", response_model=SourceOut, status_code=201)
def add(body: SourceIn, principal: AdminDep, services: ServicesDep) -> SourceOut:
    spec = SourceSpec(**{**body.model_dump(), "environments": tuple(body.environments)})
    try:
        with tenant_scope(services.engine, principal.tenant) as conn:
            record = create_source(conn, tenant=principal.tenant, spec=spec)
    except ConfigurationError as e:
        raise _invalid(e) from e
    return SourceOut(**record.as_dict())


@router.get("/v1/sources", response_model=SourceList)
def listing(principal: AdminDep, services: ServicesDep) -> SourceList:
    with tenant_scope(services.engine, principal.tenant) as conn:
        records = list_sources(conn)
    return SourceList(sources=[SourceOut(**record.as_dict()) for record in records])


@router.get("/v1/sources/{ref}", response_model=SourceOut)
def show(ref: str, principal: AdminDep, services: ServicesDep) -> SourceOut:
    """A source by id or name."""
    with tenant_scope(services.engine, principal.tenant) as conn:
        record = get_source(conn, ref)
    return SourceOut(**record.as_dict())


@router.delete("/v1/sources/{ref}", status_code=204)
def remove(
    ref: str,
    principal: AdminDep,
    services: ServicesDep,
    keep_documents: bool = False,
) -> Response:
    """Remove a source and, unless ``keep_documents``, what it indexed."""
    with tenant_scope(services.engine, principal.tenant) as conn:
        record = get_source(conn, ref)
    remove_source(services.engine, record, keep_documents=keep_documents)
    return Response(status_code=204)


@router.post("/v1/sources/{ref}/sync", response_model=SyncQueued, status_code=202)
def sync(
    ref: str, principal: AdminDep, services: ServicesDep, body: SyncIn | None = None
) -> SyncQueued:
    """Queue a sync now (a sync of the same sort already waiting is reused)."""
    with tenant_scope(services.engine, principal.tenant) as conn:
        record = get_source(conn, ref)
    if not get_kind(record.kind).listable:
        raise HTTPException(
            status_code=409,
            detail=f"a {record.kind} source is consumed, not synced: run "
            f"`ragline consume {record.name}`",
        )
    job = enqueue_sync(
        services.engine,
        services.dispatcher,
        record,
        full=body.full if body is not None else False,
        trigger="manual",
        max_attempts=services.settings.job_max_attempts,
    )
    return SyncQueued(job_id=str(job.id))


@router.post("/v1/sources/{ref}/events", response_model=SyncQueued, status_code=202)
async def events(
    ref: str,
    principal: WriterDep,
    services: ServicesDep,
    notification: Annotated[JsonObject, Body(description="An event notification message.")],
) -> SyncQueued:
    """Take an event notification (an S3 ObjectCreated/ObjectRemoved message, or its
    SNS envelope) and queue a sync of exactly the objects it names."""

    def queue() -> SyncQueued:
        with tenant_scope(services.engine, principal.tenant) as conn:
            record = get_source(conn, ref)
        kind = get_kind(record.kind)
        if kind.parse_notification is None:
            raise HTTPException(
                status_code=409, detail=f"a {record.kind} source takes no event notifications"
            )
        try:
            records = kind.parse_notification(kind.validate(record.config), notification)
        except ConfigurationError as e:
            raise _invalid(e) from e
        if not records:
            return SyncQueued(job_id=None, events=0)
        job = enqueue_sync(
            services.engine,
            services.dispatcher,
            record,
            full=False,
            trigger="event",
            events=records,
            max_attempts=services.settings.job_max_attempts,
        )
        return SyncQueued(job_id=str(job.id), events=len(records))

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
    with tenant_scope(services.engine, principal.tenant) as conn:
        source_id = get_source(conn, source).id if source else None
        found = list_runs(conn, source_id=source_id, status=status, limit=limit)
    return RunList(runs=[RunOut(**run) for run in found])


@router.get("/v1/runs/{run_id}", response_model=RunOut)
def run(
    run_id: Annotated[int, Path(ge=1, le=2**63 - 1)], principal: ReaderDep, services: ServicesDep
) -> RunOut:
    with tenant_scope(services.engine, principal.tenant) as conn:
        return RunOut(**get_run(conn, run_id))
