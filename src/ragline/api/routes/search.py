"""Hybrid search over the caller's tenant, with metadata filters."""

from __future__ import annotations

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
        hits=[
            SearchHit(
                document_id=hit.doc_id,
                chunk_id=hit.chunk_id,
                score=hit.score,
                title=hit.title,
                section=hit.section,
                text=hit.text,
                source=hit.source,
                collection=hit.collection,
                doc_type=hit.doc_type,
                page=hit.page,
            )
            for hit in hits
        ]
    )
