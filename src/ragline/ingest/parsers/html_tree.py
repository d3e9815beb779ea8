"""A light tree of an HTML page, built in one pass of lxml's event parser.

Boilerplate (scripts, navigation, headers, footers, cookie banners...) is skipped while
the page is read, so it never enters the tree. Every walk over the tree is iterative
and visits each node once: the cost is linear in the size of the page and any depth
of nesting is safe::

    page = read_page("<html><body><main><p>Rinse the probe.</p></main></body></html>")
    page.root.name, page.title        # ("main", "")
    text_of(page.root, " ")           # "Rinse the probe."
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from lxml import etree

from ragline.cancel import checkpoint
from ragline.errors import ParseError
from ragline.ingest.parsers.markdown import parse_date
from ragline.ingest.text import normalize

_DROP_TAGS = frozenset(
    [
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
    ]
)
_DROP_ROLES = frozenset(
    ("navigation", "banner", "contentinfo", "search", "complementary", "dialog")
)
_BOILERPLATE = re.compile(
    r"(^|[-_ ])(nav|navbar|menu|breadcrumbs?|cookie|consent|banner|sidebar|footer|header|"
    r"skip-link|share|social|advert|ads|newsletter|popup|modal)([-_ ]|$)",
    re.IGNORECASE,
)
_DATE_META = ("date", "dc.date", "dcterms.date", "article:published_time", "last-modified")
_ROOTS = ("main", "article", "body")
# Nodes handled between two checks of the document's parse budget.
CHECK_EVERY = 4096


@dataclass(slots=True, eq=False)
class Node:
    """An element: its lower-case tag name and its children (nodes and text)."""

    name: str
    children: list[Node | str] = field(default_factory=list)


@dataclass(slots=True)
class Page:
    root: Node
    title: str = ""
    doc_date: dt.date | None = None


def _dropped(name: str, attrib: Mapping[str, str]) -> bool:
    if name in _DROP_TAGS:
        return True
    if not attrib:
        return False
    if str(attrib.get("role") or "").lower() in _DROP_ROLES:
        return True
    classes = " ".join(str(attrib.get("class") or "").split())
    return _BOILERPLATE.search(f"{classes} {attrib.get('id') or ''}") is not None


class _Builder:
    """lxml parser target: builds the tree, skipping dropped elements whole."""

    def __init__(self) -> None:
        self.document = Node("#document")
        self.stack = [self.document]
        self.skip = 0  # depth inside a dropped element
        self.seen = 0
        self.roots: dict[str, Node] = {}
        self.title: list[str] | None = None
        self.title_done = False
        self.doc_date: dt.date | None = None

    def start(self, tag: object, attrib: Mapping[str, str]) -> None:
        self.seen += 1
        if self.seen % CHECK_EVERY == 0:
            checkpoint()
        name = tag.lower() if isinstance(tag, str) else ""
        if name == "meta" and self.doc_date is None and attrib:
            key = str(attrib.get("name") or attrib.get("property") or "").lower()
            if key in _DATE_META and attrib.get("content"):
                self.doc_date = parse_date(attrib["content"])
        elif name == "title" and not self.title_done and self.title is None:
            self.title = []
        if self.skip or _dropped(name, attrib):
            self.skip += 1
            return
        node = Node(name)
        self.stack[-1].children.append(node)
        self.stack.append(node)
        if name in _ROOTS:
            self.roots.setdefault(name, node)

    def end(self, tag: object) -> None:
        if tag == "title" and self.title is not None and not self.title_done:
            self.title_done = True
        if self.skip:
            self.skip -= 1
        elif len(self.stack) > 1:
            self.stack.pop()

    def data(self, text: str) -> None:
        if self.title is not None and not self.title_done:
            self.title.append(text)
        if self.skip:
            return
        children = self.stack[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += text
        else:
            children.append(text)

    def close(self) -> Page:
        root = next((self.roots[n] for n in _ROOTS if n in self.roots), self.document)
        title = normalize(" ".join(self.title or []))
        return Page(root=root, title=title, doc_date=self.doc_date)


def read_page(text: str) -> Page:
    """The page's tree (from its ``main``, ``article`` or ``body``), title and date."""
    parser = etree.HTMLParser(target=_Builder(), recover=True, no_network=True)
    try:
        parser.feed(text)
        page: Page = parser.close()
    except etree.LxmlError as e:
        raise ParseError(f"unreadable HTML: {e}") from e
    return page


def walk(
    node: Node, descend: Callable[[Node], bool] = lambda _: True
) -> Iterator[tuple[Node | str, bool]]:
    """The descendants of ``node`` in document order, as (item, entering); an element
    is given again with entering False once its children are done. The children of an
    element for which ``descend`` is false are left out."""
    stack: list[tuple[Node, Iterator[Node | str]]] = [(node, iter(node.children))]
    seen = 0
    while stack:
        parent, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if stack:
                yield parent, False
            continue
        seen += 1
        if seen % CHECK_EVERY == 0:
            checkpoint()
        yield child, True
        if isinstance(child, Node) and descend(child):
            stack.append((child, iter(child.children)))


def text_of(node: Node, separator: str = "") -> str:
    """The text under ``node``, its pieces joined by ``separator``."""
    return separator.join(item for item, _ in walk(node) if isinstance(item, str))


def table_text(table: Node) -> str:
    """A table as lines of ``cell | cell``, its caption first. Each cell holds the text
    of its own row only: a table nested in a cell gives rows of its own."""
    caption: str | None = None
    rows: list[list[list[str]]] = []
    open_rows: list[list[list[str]]] = []
    open_cells: list[list[str]] = []
    for item, entering in walk(table):
        if isinstance(item, str):
            if open_cells:
                open_cells[-1].append(item)
            continue
        if item.name == "caption" and caption is None and entering:
            caption = normalize(text_of(item, " "))
        elif item.name == "tr":
            if entering:
                open_rows.append([])
                rows.append(open_rows[-1])
            elif open_rows:
                open_rows.pop()
        elif item.name in ("td", "th"):
            if entering:
                open_cells.append([])
                if open_rows:
                    open_rows[-1].append(open_cells[-1])
            elif open_cells:
                open_cells.pop()
    lines = [caption] if caption else []
    for row in rows:
        cells = [normalize(" ".join(cell)) for cell in row]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)
