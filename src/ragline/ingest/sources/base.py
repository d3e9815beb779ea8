"""The source contract: list what a source holds, read one item."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class Source(Protocol):
    """Where documents come from.

    ``name`` identifies the source in the ledger: deletion reconciliation removes the
    documents of this source that ``list()`` no longer returns. ``list()`` must raise
    ``SourceUnavailable`` rather than return a partial listing.
    """

    name: str

    def list(self) -> Iterator[SourceItem]: ...

    def read(self, item: SourceItem) -> bytes: ...
