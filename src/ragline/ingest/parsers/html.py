"""HTML: boilerplate (navigation, headers, footers, scripts, cookie banners) is dropped,
headings become section paths, tables stay whole.

    doc = HtmlParser().parse(b"<main><h2>Care</h2><p>Rinse the probe.</p></main>",
                             name="care.html")
    doc.blocks[0].section, doc.blocks[0].text    # (("Care",), "Rinse the probe.")

The page is read once into a light tree and walked without recursion, so the cost is
linear in its size whatever its nesting (``html_tree``); long walks check the
document's parse budget (``ragline.cancel.checkpoint``).
"""

from __future__ import annotations

from ragline.domain import Block, DocType, ParsedDocument
from ragline.errors import ParseError
from ragline.ingest.parsers.html_tree import Node, read_page, table_text, text_of, walk
from ragline.ingest.parsers.text import title_from_name
from ragline.ingest.text import decode, normalize

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_INLINE = frozenset(
    [
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
    ]
)
# Elements whose text is taken whole; the walk does not enter them.
_WHOLE = _INLINE | _HEADINGS.keys() | {"br", "table", "pre"}


class HtmlParser:
    doc_type = DocType.HTML

    def parse(self, data: bytes, *, name: str) -> ParsedDocument:
        page = read_page(decode(data))
        walker = _Walker(page.title)
        walker.walk(page.root)
        walker.flush()
        if not walker.blocks:
            raise ParseError("the page has no text once navigation and scripts are removed")
        return ParsedDocument(
            title=page.title or walker.first_h1 or title_from_name(name),
            doc_type=self.doc_type,
            blocks=walker.blocks,
            doc_date=page.doc_date,
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
        if not self.buffer:
            return
        text = normalize("".join(self.buffer))
        self.buffer.clear()
        if text:
            self.blocks.append(Block(text=text, section=self.section()))

    def walk(self, root: Node) -> None:
        """Block-level elements are entered (their text flushed before and after);
        inline ones, headings, tables and code are taken whole, so no node is read twice."""
        for item, entering in walk(root, lambda node: node.name not in _WHOLE):
            if isinstance(item, str):
                self.buffer.append(item)
                continue
            if not entering:
                self.flush()
                continue
            name = item.name
            if name in _INLINE:
                self.buffer.append(text_of(item))
            elif name == "br":
                self.buffer.append("\n")
            elif name in _HEADINGS:
                self.flush()
                heading = normalize(text_of(item, " "))
                if heading:
                    self._push(_HEADINGS[name], heading)
            elif name == "table":
                self.flush()
                table = table_text(item)
                if table:
                    self.blocks.append(Block(text=table, section=self.section(), kind="table"))
            elif name == "pre":
                self.flush()
                code = normalize(text_of(item))
                if code:
                    self.blocks.append(Block(text=code, section=self.section(), kind="code"))
            else:
                self.flush()

    def _push(self, level: int, text: str) -> None:
        if level == 1 and not self.first_h1:
            self.first_h1 = text
            if not self.title:
                self.title = text
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
