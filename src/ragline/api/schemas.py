"""Request and response bodies of the HTTP API (they make its OpenAPI description)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ragline.domain import Filter
from ragline.jobs.store import JobStatus


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text cannot contain NUL (\\u0000) characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


def _no_nul_within(value: Any) -> Any:
    """``value`` (a JSON document) unchanged, if no key or string in it holds a NUL:
    PostgreSQL's jsonb refuses them."""
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _no_nul_within(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul_within(item)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_no_nul_within)]


class UploadAccepted(BaseModel):
    document_id: str
    job_id: str
    status: str = "queued"


class DocumentOut(BaseModel):
    document_id: str
    collection: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    metadata: dict[str, Any]
    uploaded_by: int | None = Field(description="Id of the API key that uploaded it.")
    status: Literal["queued", "indexing", "indexed", "failed", "deleted"]
    error: str | None
    chunks: int
    job_id: str | None
    created_at: str
    updated_at: str


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class JobOut(BaseModel):
    id: str
    kind: str
    queue: str
    status: JobStatus
    progress: float = Field(description="Share of the job's items done, 0 to 1.")
    attempts: int
    max_attempts: int
    error: str | None
    result: dict[str, Any] | None = Field(description="The sync report, once finished.")
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None


class JobList(BaseModel):
    jobs: list[JobOut]


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: Text | None = None
    source: Text | None = None
    type: Text | None = Field(default=None, description="pdf, html, markdown, text, record")
    document_id: Text | None = Field(default=None, description="Search inside one document.")
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    metadata: dict[Text, Text] = Field(default_factory=dict)

    def to_filter(self) -> Filter:
        return Filter(
            collection=self.collection,
            source=self.source,
            doc_type=self.type,
            doc_id=self.document_id,
            date_from=self.date_from,
            date_to=self.date_to,
            metadata=dict(self.metadata),
        )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=1, max_length=4000)
    k: int = Field(default=10, ge=1, le=100)
    mode: Literal["dense", "lexical", "hybrid"] | None = None
    filters: SearchFilters = Field(default_factory=SearchFilters)


class SearchHit(BaseModel):
    document_id: str
    chunk_id: int
    score: float
    title: str
    section: str
    text: str
    source: str
    collection: str
    doc_type: str
    page: int | None
    similarity: float | None = Field(
        description="Cosine similarity to the query, when dense search found the chunk."
    )
    uri: str


class SearchResponse(BaseModel):
    hits: list[SearchHit]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Text = Field(max_length=4000)
    conversation_id: Text | None = Field(
        default=None, description="Continue this conversation; omitted: start one."
    )
    k: int | None = Field(default=None, ge=1, le=50, description="Passages to draw from.")
    filters: SearchFilters = Field(default_factory=SearchFilters)


class CitationOut(BaseModel):
    n: int
    doc_id: str
    chunk_id: int
    title: str
    section: str
    url: str
    text: str


class AskResponse(BaseModel):
    answer: str
    mode: Literal["generative", "extractive", "refused", "clarify"] = Field(
        description="generative: written by a language model from the cited passages; "
        "extractive: sentences quoted from them (no language model); refused: the "
        "knowledge base does not hold the answer; clarify: the question needs more words."
    )
    citations: list[CitationOut]
    conversation_id: str | None
    trace_id: str
    removed_citations: int = Field(
        description="Markers removed: pointing at no passage, or at one that does not "
        "support the sentence."
    )
    unsupported: bool = Field(
        description="The model wrote sentences its passages do not support (dropped), or "
        "the answer has no valid citation."
    )
    dropped_sentences: int = Field(
        default=0, description="Sentences dropped for want of a supporting citation."
    )
    provider: str | None
    usage: dict[str, int] | None = Field(description="Tokens, as the provider counted them.")
    cached: bool = Field(description="Reused from an identical earlier question.")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: Text = Field(max_length=64)
    rating: Literal[-1, 0, 1]
    reason: Text | None = Field(default=None, max_length=200)
    comment: Text | None = Field(default=None, max_length=4000)


class FeedbackStored(BaseModel):
    trace_id: str
    rating: int
    created: bool = Field(description="False when feedback on this trace was replaced.")


class FeedbackOut(BaseModel):
    trace_id: str
    rating: int
    reason: str | None
    comment: str | None
    created_at: str
    updated_at: str
    question: str
    query: str
    answer: str
    mode: str
    citations: list[CitationOut]
    conversation_id: str | None
    provider: str | None


class FeedbackList(BaseModel):
    feedback: list[FeedbackOut]


Environment = Literal["development", "staging", "production"]


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(max_length=100, examples=["news-articles"])
    kind: Literal["sql", "confluence", "s3", "stream", "files"]
    collection: Text = Field(max_length=200)
    config: JsonObject = Field(
        description="The kind's connection settings; secrets only as *_env variable names."
    )
    profiles: dict[Text, dict[Text, int]] = Field(
        default_factory=dict,
        description='Chunking by content category: {"default": {"max_tokens": 300}, '
        '"video": {"max_tokens": 600, "overlap_tokens": 40}}.',
    )
    schedule: Text | None = Field(
        default=None, description="Cron for incremental syncs (5 fields, or 6 with seconds)."
    )
    full_schedule: Text | None = Field(
        default=None, description="Cron for full syncs, which also find deleted items."
    )
    environments: list[Environment] = Field(
        default_factory=lambda: list[Environment](("development", "staging", "production")),
        description="Where this source may run (RAGLINE_ENV).",
    )
    enabled: bool = True


class SourceOut(BaseModel):
    id: str
    name: str
    kind: str
    collection: str
    config: dict[str, Any]
    profiles: dict[str, Any]
    schedule: str | None
    full_schedule: str | None
    environments: list[str]
    enabled: bool
    state: dict[str, Any] = Field(description="Where incremental syncs got to.")
    next_run_at: str | None
    next_full_at: str | None
    created_at: str
    updated_at: str


class SourceList(BaseModel):
    sources: list[SourceOut]


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full: bool = Field(
        default=False,
        description="List everything (finding deleted items) instead of "
        "taking the changes since the last sync.",
    )


class SyncQueued(BaseModel):
    job_id: str | None = Field(description="None when the notification named nothing to sync.")
    events: int | None = Field(default=None, description="Event records queued, for events.")


class RunOut(BaseModel):
    id: int
    collection: str
    source: str
    source_id: str | None
    source_name: str | None
    job_id: str | None
    trigger: str
    mode: str
    status: Literal["running", "succeeded", "failed"]
    started_at: str
    finished_at: str | None
    added: int
    updated: int
    unchanged: int
    deleted: int
    failed: int
    chunks: int
    embedded: int = Field(description="Chunks the model embedded (others came from the cache).")
    embedding_calls: int = Field(description="Requests made to the embedding model.")
    seconds: float | None
    errors: list[dict[str, Any]] = Field(description="Failed items with their reasons.")
    warnings: list[str]


class RunList(BaseModel):
    runs: list[RunOut]
