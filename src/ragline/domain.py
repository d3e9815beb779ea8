"""Plain data types shared by every layer. No I/O, and no imports of our own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DocType(StrEnum):
    PDF = "pdf"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"
    RECORD = "record"


class DocStatus(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"
    FAILED = "failed"


class Outcome(StrEnum):
    """What a sync did with one source item."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Block:
    """A run of text under one section of a document (a paragraph, a list, a table)."""

    text: str
    section: tuple[str, ...] = ()
    page: int | None = None
    kind: str = "text"  # "text" | "table" | "code"


@dataclass(slots=True)
class ParsedDocument:
    """What a parser makes of a file: text in reading order, with its structure."""

    title: str
    doc_type: DocType
    blocks: list[Block]
    doc_date: dt.date | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def iter_text(self) -> Iterator[str]:
        yield self.title
        for block in self.blocks:
            yield " > ".join(block.section)
            yield block.text


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document sized for the embedding model.

    ``text`` is the passage shown to people; ``context`` is the title and section path
    it sits under; ``embed_text`` is both, as the model sees them. Lexical search
    matches both too, the context as a field of its own.
    """

    ordinal: int
    text: str
    context: str
    embed_text: str
    section: tuple[str, ...]
    token_count: int
    sha256: str
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    """Metadata restrictions on a search. Every field that is set must match."""

    collection: str | None = None
    source: str | None = None
    doc_type: str | None = None
    doc_id: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    chunk_id: int
    score: float
    title: str
    section: str
    text: str
    source: str
    collection: str
    doc_type: str
    page: int | None = None
    similarity: float | None = None  # cosine to the query, when the dense list found it
    uri: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "score": self.score,
            "title": self.title,
            "section": self.section,
            "text": self.text,
            "source": self.source,
            "collection": self.collection,
            "doc_type": self.doc_type,
            "page": self.page,
            "similarity": self.similarity,
            "uri": self.uri,
        }


@dataclass(frozen=True, slots=True)
class Citation:
    """A source an answer cites as ``[n]``."""

    n: int
    doc_id: str
    chunk_id: int
    title: str
    section: str
    url: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "section": self.section,
            "url": self.url,
            "text": self.text,
        }


class AnswerMode(StrEnum):
    GENERATIVE = "generative"  # written by a language model from the sources
    EXTRACTIVE = "extractive"  # sentences quoted from the sources, no language model
    REFUSED = "refused"  # the knowledge base does not hold the answer
    CLARIFY = "clarify"  # the question needs more words


@dataclass(slots=True)
class Answer:
    answer: str
    mode: AnswerMode
    citations: list[Citation]
    trace_id: str
    conversation_id: str | None = None
    # Citation markers removed: pointing at no passage, or at one that does not
    # support the sentence.
    removed_citations: int = 0
    # The model wrote sentences its passages do not support (dropped), or the answer
    # has no valid citation.
    unsupported: bool = False
    # Sentences of the model's text dropped for want of a supporting citation.
    dropped_sentences: int = 0
    provider: str | None = None
    usage: dict[str, int] | None = None
    # Reused from the answer cache rather than generated for this request.
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "mode": self.mode.value,
            "citations": [c.as_dict() for c in self.citations],
            "conversation_id": self.conversation_id,
            "trace_id": self.trace_id,
            "removed_citations": self.removed_citations,
            "unsupported": self.unsupported,
            "dropped_sentences": self.dropped_sentences,
            "provider": self.provider,
            "usage": self.usage,
            "cached": self.cached,
        }


@dataclass(slots=True)
class ItemFailure:
    doc_id: str
    reason: str


@dataclass(slots=True)
class SyncReport:
    """The result of one sync run over one or more sources."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    chunks: int = 0
    embedded: int = 0
    embedding_calls: int = 0
    seconds: float = 0.0
    failures: list[ItemFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    # Where an incremental source got to: saved, and passed to its next sync.
    state: dict[str, Any] | None = None

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def merge(self, other: SyncReport) -> None:
        for name in (
            "added",
            "updated",
            "unchanged",
            "deleted",
            "failed",
            "chunks",
            "embedded",
            "embedding_calls",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.failures.extend(other.failures)
        self.warnings.extend(other.warnings)
        self.run_ids.extend(other.run_ids)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed": self.failed,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "embedding_calls": self.embedding_calls,
            "seconds": round(self.seconds, 3),
            "failures": [{"doc_id": f.doc_id, "reason": f.reason} for f in self.failures],
            "warnings": list(self.warnings),
            "run_ids": list(self.run_ids),
        }
