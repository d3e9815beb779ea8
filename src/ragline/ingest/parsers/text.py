"""Plain text: paragraphs separated by blank lines; a lone short line that reads like a
title ("2. Warranty period") starts a section."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ragline.domain import Block, DocType, ParsedDocument
from ragline.errors import ParseError
from ragline.ingest.text import decode, looks_like_heading, normalize

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def title_from_name(name: str) -> str:
    stem = PurePosixPath(name).stem
    return re.sub(r"[-_]+", " ", stem).strip() or name


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


class TextParser:
    doc_type = DocType.TEXT

    def parse(self, data: bytes, *, name: str) -> ParsedDocument:
        text = normalize(decode(data))
        if not text:
            raise ParseError("the file holds no text (only whitespace)")
        parts = paragraphs(text)
        first_line = parts[0].split("\n", 1)[0]
        title = first_line if looks_like_heading(first_line) else title_from_name(name)
        blocks: list[Block] = []
        section: tuple[str, ...] = ()
        for index, part in enumerate(parts):
            is_last = index == len(parts) - 1
            if "\n" not in part and looks_like_heading(part) and not is_last:
                if not (index == 0 and part == title):
                    section = (part,)
                continue
            blocks.append(Block(text=part, section=section))
        if not blocks:
            blocks = [Block(text=part) for part in parts]
        return ParsedDocument(title=title, doc_type=self.doc_type, blocks=blocks)
