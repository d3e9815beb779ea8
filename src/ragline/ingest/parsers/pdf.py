"""PDF: the text layer, page by page. Pages without extractable text are reported in
the document's warnings (a scanned page needs OCR, which this parser does not do).

The text layer comes as wrapped lines. Running headers and footers (lines repeated at
the top or bottom of most pages, page numbers aside) are dropped where the page keeps
other text, wrapped lines are joined back into paragraphs, and short title-like lines
become section headings::

    doc = PdfParser().parse(Path("manual.pdf").read_bytes(), name="manual.pdf")
    [(b.page, b.section, b.text) for b in doc.blocks]
"""

from __future__ import annotations

import io
import logging
import re

from ragline.cancel import checkpoint
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
            checkpoint()
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


# A number counts as a page number when it is the page's index, give or take a few
# (front matter numbered apart, a cover page left out).
_PAGE_NUMBER_SLACK = 3
_NUMBER = re.compile(r"\d+")


def _edge_key(line: str, page: int) -> str:
    """``line`` with its page numbers replaced by ``#``; other numbers are kept, so
    that "Step 12" at the top of page 3 and "Step 13" at the top of page 4 differ."""

    def replace(match: re.Match[str]) -> str:
        number = int(match.group()) if len(match.group()) < 7 else -1
        return "#" if abs(number - page) <= _PAGE_NUMBER_SLACK else match.group()

    return _NUMBER.sub(replace, line)


def _edge_lines(texts: list[str | None]) -> set[str]:
    """Keys of the lines found first or last on most pages with text (and on two or
    more): running headers and footers."""
    counts: dict[str, int] = {}
    pages = 0
    for number, text in enumerate(texts, start=1):
        if not text:
            continue
        pages += 1
        lines = text.split("\n")
        for line in {lines[0], lines[-1]}:
            key = _edge_key(line, number)
            counts[key] = counts.get(key, 0) + 1
    return {key for key, n in counts.items() if n >= 2 and n * 2 > pages}


def _kept_lines(lines: list[str], number: int, repeated: set[str], title: str | None) -> list[str]:
    """The page's lines less its running header and footer, which go only when the
    page keeps other text: a page's only lines are its content, never a header."""
    last = len(lines) - 1
    running = {i for i in {0, last} if _running(lines[i], number, repeated, title)}
    if len(running) >= len(lines):
        return lines
    return [line for i, line in enumerate(lines) if i not in running]


def _layout_blocks(texts: list[str | None]) -> list[Block]:
    repeated = _edge_lines(texts)
    lengths = sorted(len(line) for t in texts if t for line in t.split("\n"))
    short = 0.8 * (lengths[int(len(lengths) * 0.9)] if lengths else 80)
    first = next(t for t in texts if t).split("\n", 1)[0]
    title = first if looks_like_heading(first) and len(first.split()) >= 3 else None
    blocks: list[Block] = []
    section: tuple[str, ...] = ()
    for number, text in enumerate(texts, start=1):
        checkpoint()
        if not text:
            continue
        paragraph: list[str] = []
        for line in _kept_lines(text.split("\n"), number, repeated, title):
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
    if _edge_key(line, page) in repeated:
        return True
    return page > 1 and title is not None and title in line


def _join(lines: list[str]) -> str:
    text = lines[0]
    for line in lines[1:]:
        # A word hyphenated across lines is joined without its hyphen.
        hyphenated = text.endswith("-") and line[:1].islower()
        text = text[:-1] + line if hyphenated else f"{text} {line}"
    return text
