"""The parser contract: bytes of one file in, a ``ParsedDocument`` out."""

from __future__ import annotations

from typing import Protocol

from ragline.domain import DocType, ParsedDocument


class Parser(Protocol):
    """Turns the bytes of a document into text with its structure.

    Raises ``ParseError`` with a readable reason when it cannot (corrupt, empty,
    encrypted, binary...); never returns a document without text.
    """

    doc_type: DocType

    def parse(self, data: bytes, *, name: str) -> ParsedDocument: ...
