"""Parsers by file type.

parser = parser_for("guide.md")         # MarkdownParser
document = parser.parse(data, name="guide.md")
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ragline.ingest.parsers.base import Parser
from ragline.ingest.parsers.html import HtmlParser
from ragline.ingest.parsers.markdown import MarkdownParser
from ragline.ingest.parsers.pdf import PdfParser
from ragline.ingest.parsers.record import RecordParser
from ragline.ingest.parsers.text import TextParser

__all__ = ["SUPPORTED_SUFFIXES", "Parser", "parser_for"]

_BY_SUFFIX: dict[str, Parser] = {
    ".pdf": PdfParser(),
    ".html": HtmlParser(),
    ".htm": HtmlParser(),
    ".xhtml": HtmlParser(),
    ".md": MarkdownParser(),
    ".markdown": MarkdownParser(),
    ".txt": TextParser(),
    ".text": TextParser(),
    ".rst": TextParser(),
    ".log": TextParser(),
    ".json": RecordParser(),
}
SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)


def parser_for(name: str) -> Parser | None:
    """The parser for a file name, by its suffix; None when the type is not supported."""
    return _BY_SUFFIX.get(PurePosixPath(name).suffix.lower())
