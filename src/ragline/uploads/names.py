"""Names of uploads: the file name a parser goes by, where a file is kept, and the
name its document carries in the ledger."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from urllib.parse import quote

from ragline.errors import UnsupportedType
from ragline.ingest.parsers import SUPPORTED_SUFFIXES

# The content types accepted for each kind of file; a file whose declared type is
# generic is judged by its name.
_TYPES = {
    "application/pdf": ".pdf",
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/plain": ".txt",
    "application/json": ".json",
}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream"}
_TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".rst", ".log"}


def parse_name(filename: str, content_type: str) -> str:
    """The name the parser goes by: the file's own, or one with the suffix of its type.

    Raises ``UnsupportedType`` when neither the name nor the type is supported, or
    when they disagree (a PNG named ``.pdf``, say)."""
    media = content_type.split(";", 1)[0].strip().lower()
    suffix = PurePosixPath(filename).suffix.lower()
    expected = _TYPES.get(media)
    supported = ", ".join(sorted(_TYPES))
    if media not in _GENERIC and expected is None:
        raise UnsupportedType(
            f"content type {media!r} is not supported; send one of {supported} "
            "(or application/octet-stream with a file name ending in "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))})"
        )
    if suffix in SUPPORTED_SUFFIXES:
        agrees = (
            expected is None
            or expected == suffix
            or (expected == ".html" and suffix in {".htm", ".xhtml"})
            or (expected in {".txt", ".md"} and suffix in _TEXT_SUFFIXES)
        )
        if not agrees:
            raise UnsupportedType(
                f"{filename!r} is sent as {media!r}, which does not match its name; "
                "send the file's own content type"
            )
        return filename
    if expected is None:
        raise UnsupportedType(
            f"cannot tell the type of {filename!r}: name it with one of "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))} or send its content type"
        )
    return filename + expected


def storage_key(tenant: str, upload_id: uuid.UUID) -> str:
    return f"{quote(tenant, safe='')}/{upload_id}"


def upload_source_name(upload_id: uuid.UUID) -> str:
    return f"upload:{upload_id}"
