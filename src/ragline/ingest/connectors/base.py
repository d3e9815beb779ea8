"""The source contract: list what a source holds, read one item."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ragline.ingest.chunking import ChunkProfile


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One document as a source lists it, before it is read.

    ``doc_id`` is stable for the life of the document at the source (a relative path,
    a row id, a page id); ``etag`` is a cheap change token: when it matches what the
    ledger recorded, the item is not even read. ``metadata`` the source knows (an
    upload's fields, a row's columns) is merged over what the parser found, and can
    be filtered on in searches.
    """

    doc_id: str
    name: str
    uri: str
    etag: str | None = None
    modified: dt.datetime | None = None
    size: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    profile: ChunkProfile | None = field(default=None, hash=False, compare=False)


class Source(Protocol):
    """Where documents come from.

    ``name`` identifies the source in the ledger: deletion reconciliation removes the
    documents of this source that ``list()`` no longer returns. ``list()`` must raise
    ``SourceUnavailable`` rather than return a partial listing.
    """

    name: str

    def list(self) -> Iterator[SourceItem]: ...

    def read(self, item: SourceItem) -> bytes: ...


@dataclass(slots=True)
class Changes:
    """What changed at a source since its last sync.

    ``items`` are (possibly) new or changed; ``deleted`` maps the ids of documents
    known to be gone to when they went (None when unknown). Documents in neither are
    left as they are: unlike a full listing, a change set says nothing about them.
    """

    items: list[SourceItem] = field(default_factory=list)
    deleted: dict[str, dt.datetime | None] = field(default_factory=dict)


@runtime_checkable
class IncrementalSource(Source, Protocol):
    """A source that can say what changed since a saved position (a watermark, a
    cursor) without listing everything.

    ``changes(state)`` returns the change set after the position ``state`` (an empty
    dict on the first sync); ``checkpoint()`` returns the position to save once the
    sync that consumed the changes has committed. ``list()`` stays the full listing:
    a full sync uses it to find documents that no longer exist, and its checkpoint
    must be as good as an incremental one's.
    """

    def changes(self, state: dict[str, Any]) -> Changes: ...

    def checkpoint(self) -> dict[str, Any]: ...
