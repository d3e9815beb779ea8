"""HTML: boilerplate (navigation, headers, footers, scripts, cookie banners) is dropped,
headings become section paths, tables stay whole.
"""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, NavigableString, Tag

from ragline.domain import Block, DocType, ParsedDocument
from ragline.errors import ParseError
from ragline.ingest.parsers.markdown import parse_date
from ragline.ingest.parsers.text import title_from_name
from ragline.ingest.text import decode, normalize

_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "svg",
    "canvas",
    "form",
    "nav",
    "header",
    "footer",
    "aside",
    "button",
    "select",
    "input",
    "textarea",
)
_DROP_ROLES = ("navigation", "banner", "contentinfo", "search", "complementary", "dialog")
_BOILERPLATE = re.compile(
    r"(^|[-_ ])(nav|navbar|menu|breadcrumbs?|cookie|consent|banner|sidebar|footer|header|"
    r"skip-link|share|social|advert|ads|newsletter|popup|modal)([-_ ]|$)",
    re.IGNORECASE,
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_INLINE = {
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "data",
    "del",
    "dfn",
    "em",
    "font",
    "i",
    "ins",
    "kbd",
    "label",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "time",
    "u",
    "var",
    "wbr",
}
_DATE_META = ("date", "dc.date", "dcterms.date", "article:published_time", "last-modified")


class HtmlParser:
    doc_type = DocType.HTML

    def parse(self, data: bytes, *, name: str) -> ParsedDocument:
        text = decode(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            soup = BeautifulSoup(text, "lxml")
        title = normalize(soup.title.get_text(" ")) if soup.title else ""
        doc_date = None
        for meta in soup.find_all("meta"):
            key = str(meta.get("name") or meta.get("property") or "").lower()
            if key in _DATE_META and meta.get("content"):
                doc_date = parse_date(meta["content"])
                if doc_date:
                    break

        for tag in soup.find_all(_DROP_TAGS):
            tag.decompose()
        for tag in soup.find_all(True):
            if tag.decomposed or tag.attrs is None:
                continue
            classes = " ".join(tag.get("class") or [])
            role = str(tag.get("role") or "").lower()
            if role in _DROP_ROLES or _BOILERPLATE.search(f"{classes} {tag.get('id') or ''}"):
                tag.decompose()

        root: Tag = soup
        for candidate in (soup.find("main"), soup.find("article"), soup.body):
            if isinstance(candidate, Tag):
                root = candidate
                break
        walker = _Walker(title)
        walker.walk(root)
        walker.flush()
        if not walker.blocks:
            raise ParseError("the page has no text once navigation and scripts are removed")
        return ParsedDocument(
            title=title or walker.first_h1 or title_from_name(name),
            doc_type=self.doc_type,
            blocks=walker.blocks,
            doc_date=doc_date,
        )


class _Walker:
    """Walks the tree in reading order, cutting text into blocks at block-level tags."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.first_h1 = ""
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []
        self.buffer: list[str] = []

    def section(self) -> tuple[str, ...]:
        return tuple(
            text for level, text in self.headings if not (level == 1 and text == self.title)
        )

    def flush(self) -> None:
        text = normalize("".join(self.buffer))
        self.buffer.clear()
        if text:
            self.blocks.append(Block(text=text, section=self.section()))

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a comment, CDATA or doctype
                    self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name in _INLINE:
                self.buffer.append(child.get_text())
            elif name == "br":
                self.buffer.append("\n")
            elif name in _HEADINGS:
                self.flush()
                heading = normalize(child.get_text(" "))
                if heading:
                    self._push(_HEADINGS[name], heading)
            elif name == "table":
                self.flush()
                table = _table_text(child)
                if table:
                    self.blocks.append(Block(text=table, section=self.section(), kind="table"))
            elif name == "pre":
                self.flush()
                code = normalize(child.get_text())
                if code:
                    self.blocks.append(Block(text=code, section=self.section(), kind="code"))
            else:
                self.flush()
                self.walk(child)
                self.flush()

    def _push(self, level: int, text: str) -> None:
        if level == 1 and not self.first_h1:
            self.first_h1 = text
            if not self.title:
                self.title = text
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))


def _table_text(table: Tag) -> str:
    rows = []
    caption = table.find("caption")
    if caption:
        rows.append(normalize(caption.get_text(" ")))
    for row in table.find_all("tr"):
        cells = [normalize(cell.get_text(" ")) for cell in row.find_all(["th", "td"])]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
