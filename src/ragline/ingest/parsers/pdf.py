"""PDF: the text layer, page by page. Pages without extractable text are reported in
the document's warnings (a scanned page needs OCR, which this parser does not do).

The text layer comes as wrapped lines. Running headers and footers (lines repeated at
the top or bottom of most pages) are dropped, wrapped lines are joined back into
paragraphs, and short title-like lines become section headings.
"""

from __future__ import annotations

import io
import logging
import re

from ragline.domain import Block, DocType, ParsedDocument
from ragline.errors import ParseError
from ragline.ingest.parsers.markdown import parse_date
from ragline.ingest.parsers.text import title_from_name
from ragline.ingest.text import looks_like_heading, normalize

logging.getLogger("pypdf").setLevel(logging.ERROR)


class PdfParser:
    doc_type = DocType.PDF

    def parse(self, data: bytes, *, name: str) -> ParsedDocument:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        if not data.lstrip()[:5].startswith(b"%PDF"):
            raise ParseError("not a PDF file (no %PDF header)")
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise ParseError("the PDF is encrypted with a password")
            pages = list(reader.pages)
        except ParseError:
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
            raise ParseError(f"corrupt PDF: {e}") from e
        except Exception as e:
            raise ParseError(f"unreadable PDF ({type(e).__name__}): {e}") from e
        if not pages:
            raise ParseError("the PDF has no pages")

        texts: list[str | None] = []
        warnings: list[str] = []
        for number, page in enumerate(pages, start=1):
            try:
                text = normalize(page.extract_text() or "")
            except Exception as e:
                warnings.append(f"page {number}: text could not be extracted ({e})")
                texts.append(None)
                continue
            if not text:
                warnings.append(f"page {number}: no extractable text (scanned image? no OCR)")
            texts.append(text or None)
        if not any(texts):
            raise ParseError(
                f"no extractable text on any of the {len(pages)} pages "
                "(a scanned PDF needs OCR, which is not enabled)"
            )
        blocks = _layout_blocks(texts)

        info = _metadata(reader)
        first_line = next(t for t in texts if t).split("\n", 1)[0]
        title = info.get("title") or (first_line if looks_like_heading(first_line) else "")
        return ParsedDocument(
            title=title or title_from_name(name),
            doc_type=self.doc_type,
            blocks=blocks,
            doc_date=parse_date(info["created"]) if "created" in info else None,
            metadata={"pages": len(pages)},
            warnings=warnings,
        )


def _metadata(reader: object) -> dict[str, str]:
    try:
        meta = reader.metadata  # type: ignore[attr-defined]
    except Exception:
        return {}
    if meta is None:
        return {}
    out: dict[str, str] = {}
    if meta.title and str(meta.title).strip():
        out["title"] = normalize(str(meta.title))
    try:
        created = meta.creation_date
    except Exception:
        created = None
    if created is not None:
        out["created"] = created.date().isoformat()
    return out


def _edge_lines(texts: list[str | None]) -> set[str]:
    """Lines found first or last on at least half of the pages (and on two or more)."""
    pages = [t.split("\n") for t in texts if t]
    if len(pages) < 2:
        return set()
    counts: dict[str, int] = {}
    for lines in pages:
        for line in {lines[0], lines[-1]}:
            key = re.sub(r"\d+", "#", line)
            counts[key] = counts.get(key, 0) + 1
    return {key for key, n in counts.items() if n >= 2 and n * 2 >= len(pages)}


def _layout_blocks(texts: list[str | None]) -> list[Block]:
    repeated = _edge_lines(texts)
    lengths = sorted(len(line) for t in texts if t for line in t.split("\n"))
    short = 0.8 * (lengths[int(len(lengths) * 0.9)] if lengths else 80)
    first = next(t for t in texts if t).split("\n", 1)[0]
    title = first if looks_like_heading(first) and len(first.split()) >= 3 else None
    blocks: list[Block] = []
    section: tuple[str, ...] = ()
    for number, text in enumerate(texts, start=1):
        if not text:
            continue
        lines = text.split("\n")
        last = len(lines) - 1
        paragraph: list[str] = []
        for i, line in enumerate(lines):
            if i in (0, last) and _running(line, number, repeated, title):
                continue
            after_sentence = not paragraph or paragraph[-1].endswith((".", ":", "!", "?"))
            if after_sentence and looks_like_heading(line) and len(line) < short:
                if paragraph:
                    blocks.append(Block(text=_join(paragraph), section=section, page=number))
                    paragraph = []
                section = () if line == first else (line,)
                continue
            paragraph.append(line)
            if len(line) < short and line.endswith((".", ":", "!", "?")):
                blocks.append(Block(text=_join(paragraph), section=section, page=number))
                paragraph = []
        if paragraph:
            blocks.append(Block(text=_join(paragraph), section=section, page=number))
    return blocks


def _running(line: str, page: int, repeated: set[str], title: str | None) -> bool:
    """A running header or footer: repeated on most pages, or the title on a later page."""
    if re.sub(r"\d+", "#", line) in repeated:
        return True
    return page > 1 and title is not None and title in line


def _join(lines: list[str]) -> str:
    text = lines[0]
    for line in lines[1:]:
        # A word hyphenated across lines is joined without its hyphen.
        hyphenated = text.endswith("-") and line[:1].islower()
        text = text[:-1] + line if hyphenated else f"{text} {line}"
    return text
