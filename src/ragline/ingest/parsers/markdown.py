"""Markdown: ATX and setext headings give each block its section path.

Front matter (``---`` ... ``---`` at the top) supplies title, date and metadata;
fenced code and tables are kept as single blocks; ``#`` lines inside fences are code,
not headings.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ragline.cancel import checkpoint
from ragline.domain import Block, DocType, ParsedDocument
from ragline.errors import ParseError
from ragline.ingest.parsers.text import paragraphs, title_from_name
from ragline.ingest.text import decode, normalize

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# Link text and target stop at the next bracket or parenthesis: a run of unclosed
# brackets is then read in linear time, not retried from each one to the end.
_LINK = re.compile(r"!?\[([^\[\]]*)\]\([^()]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


def parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip().strip("'\"")
    for candidate in (text, text[:10]):
        try:
            return dt.date.fromisoformat(candidate)
        except ValueError:
            continue
    return None


def _front_matter(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    if not lines or lines[0].strip() != "---":
        return {}, lines
    for end in range(1, min(len(lines), 200)):
        if lines[end].strip() in ("---", "..."):
            meta: dict[str, str] = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep and key.strip() and not key.startswith((" ", "\t", "-")):
                    meta[key.strip().lower()] = value.strip().strip("'\"")
            return meta, lines[end + 1 :]
    return {}, lines


def _inline(text: str) -> str:
    return _EMPHASIS.sub(r"\2", _LINK.sub(r"\1", text))


class MarkdownParser:
    doc_type = DocType.MARKDOWN

    def parse(self, data: bytes, *, name: str) -> ParsedDocument:
        raw = decode(data).replace("\r\n", "\n").replace("\r", "\n")
        meta, lines = _front_matter(raw.split("\n"))
        blocks: list[Block] = []
        headings: list[tuple[int, str]] = []
        title = meta.get("title") or ""
        buffer: list[str] = []

        def section() -> tuple[str, ...]:
            return tuple(text for level, text in headings if not (level == 1 and text == title))

        def flush() -> None:
            text = normalize("\n".join(buffer))
            buffer.clear()
            for paragraph in paragraphs(text):
                is_table = all(line.lstrip().startswith("|") for line in paragraph.split("\n"))
                blocks.append(
                    Block(
                        text=paragraph if is_table else _inline(paragraph),
                        section=section(),
                        kind="table" if is_table else "text",
                    )
                )

        fence: str | None = None
        code: list[str] = []
        for number, line in enumerate(lines):
            if number % 4096 == 0:
                checkpoint()
            if fence is not None:
                if line.strip().startswith(fence):
                    code_text = normalize("\n".join(code))
                    if code_text:
                        blocks.append(Block(text=code_text, section=section(), kind="code"))
                    fence, code = None, []
                else:
                    code.append(line)
                continue
            if opened := _FENCE.match(line):
                flush()
                fence = opened.group(1)[0] * 3
                continue
            if atx := _ATX.match(line):
                flush()
                self._push(headings, len(atx.group(1)), _inline(atx.group(2).strip()))
                if not title and len(atx.group(1)) == 1:
                    title = headings[-1][1]
                continue
            if _SETEXT.match(line) and buffer and buffer[-1].strip():
                heading = buffer.pop().strip()
                flush()
                level = 1 if line.strip().startswith("=") else 2
                self._push(headings, level, _inline(heading))
                if not title and level == 1:
                    title = heading
                continue
            buffer.append(line)
        flush()
        if code:  # an unclosed fence runs to the end of the file
            blocks.append(Block(text=normalize("\n".join(code)), section=section(), kind="code"))
        if not blocks:
            raise ParseError("the document has no text (only headings or front matter)")

        metadata = {k: v for k, v in meta.items() if k not in ("title", "date")}
        return ParsedDocument(
            title=title or title_from_name(name),
            doc_type=self.doc_type,
            blocks=blocks,
            doc_date=parse_date(meta["date"]) if "date" in meta else None,
            metadata=metadata,
        )

    @staticmethod
    def _push(headings: list[tuple[int, str]], level: int, text: str) -> None:
        while headings and headings[-1][0] >= level:
            headings.pop()
        headings.append((level, text))
