"""Hybrid search over the caller's tenant, with metadata filters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ragline.api.deps import ReaderDep, ServicesDep
from ragline.api.schemas import SearchHit, SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"])


@router.post("/search", response_model=SearchResponse)
def search(body: SearchRequest, principal: ReaderDep, services: ServicesDep) -> SearchResponse:
    hits = services.searcher.search(
        body.query,
        k=body.k,
        mode=body.mode,
        search_filter=body.filters.to_filter(),
        tenant=principal.tenant,
    )
    return SearchResponse(
        hits=[SearchHit(document_id=hit.doc_id, **_without_doc_id(hit.as_dict())) for hit in hits]
    )


def _without_doc_id(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key != "doc_id"}
