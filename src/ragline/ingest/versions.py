"""Versions: what makes two indexings of a document different besides its content,
and which version of each document a change set holds last.

    pipeline_version(window)          # changes when parsing or chunking changes
    items, deleted = latest_versions(changes)
"""

from __future__ import annotations

import datetime as dt

from ragline.ingest.chunking import PROFILES
from ragline.ingest.connectors.base import Changes, SourceItem
from ragline.ingest.text import sha256_text

# Bump when parsing or chunking changes in a way that should re-chunk unchanged files.
PARSER_VERSION = "3"  # 3: token splits cut only where a word begins


def pipeline_version(chunker_window: int) -> str:
    """Fingerprint of everything besides the content that shapes a document's chunks."""
    profiles = ";".join(PROFILES[t].fingerprint() for t in sorted(PROFILES))
    return sha256_text(f"{PARSER_VERSION}|{chunker_window}|{profiles}")[:16]


def latest_versions(changes: Changes) -> tuple[list[SourceItem], dict[str, dt.datetime | None]]:
    """The last version of each document in a change set: the latest item, or the
    deletion when it is not older than the latest item."""
    latest: dict[str, SourceItem] = {}
    for item in changes.items:
        previous = latest.get(item.doc_id)
        if previous is None or _at(item.modified) >= _at(previous.modified):
            latest[item.doc_id] = item
    deleted: dict[str, dt.datetime | None] = {}
    for doc_id, when in changes.deleted.items():
        found = latest.get(doc_id)
        if found is not None and when is not None and _at(found.modified) > when:
            continue
        latest.pop(doc_id, None)
        deleted[doc_id] = when
    return list(latest.values()), deleted


def _at(when: dt.datetime | None) -> dt.datetime:
    return when or dt.datetime.min.replace(tzinfo=dt.UTC)
