"""Uploads: ``POST /v1/documents`` answers 202 at once; a background job indexes the file."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from ragline.api.deps import ReaderDep, ServicesDep
from ragline.api.schemas import DocumentList, DocumentOut, UploadAccepted
from ragline.logs import get_logger
from ragline.uploads.metadata import parse_metadata

router = APIRouter(prefix="/v1/documents", tags=["documents"])
log = get_logger(__name__)


@router.post("", status_code=202, response_model=UploadAccepted)
async def upload_document(
    principal: ReaderDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="PDF, HTML, Markdown, text or JSON.")],
    collection: Annotated[str, Form(max_length=200)] = "uploads",
    metadata: Annotated[str | None, Form(description='A JSON object, e.g. {"team": "ops"}')] = None,
) -> UploadAccepted:
    """Store the file and queue its indexing; poll ``GET /v1/jobs/{job_id}``."""
    upload, job = await run_in_threadpool(
        services.uploads.accept,
        principal,
        file.file,
        filename=file.filename or "",
        content_type=file.content_type or "",
        collection=collection,
        metadata=parse_metadata(metadata),
    )
    log.info("document_uploaded", document_id=str(upload.id), job_id=str(job.id))
    return UploadAccepted(document_id=str(upload.id), job_id=str(job.id))


@router.get("", response_model=DocumentList)
def list_documents(
    principal: ReaderDep,
    services: ServicesDep,
    collection: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DocumentList:
    uploads = services.uploads.listing(principal, collection=collection, limit=limit, offset=offset)
    return DocumentList(documents=[DocumentOut(**u.as_dict()) for u in uploads])


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(
    document_id: uuid.UUID, principal: ReaderDep, services: ServicesDep
) -> DocumentOut:
    return DocumentOut(**services.uploads.get(principal, document_id).as_dict())


@router.delete("/{document_id}", status_code=204)
def delete_document(document_id: uuid.UUID, principal: ReaderDep, services: ServicesDep) -> None:
    """Remove the file, its chunks and its record (the ledger keeps it as deleted). Its
    indexing job, waiting or running, is cancelled first (writer)."""
    services.uploads.delete(principal, document_id)
