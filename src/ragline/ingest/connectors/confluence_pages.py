"""A Confluence page's rendered body as the HTML document ragline indexes, normalised
so that a cosmetic re-render (anchors, macro ids, whitespace) changes nothing.

    page_document("Release notes", "<p>The <b>2.4</b> release...</p>")
"""

from __future__ import annotations

import html
import re

from bs4 import BeautifulSoup, Comment, NavigableString

_KEPT_ATTRIBUTES = frozenset({"href", "colspan", "rowspan"})
_DROPPED = ".confluence-anchor-link, .toc-macro, [data-macro-name=toc]"
_WHITESPACE = re.compile(r"\s+")


def page_document(title: str, body: str) -> str | None:
    """A page's rendered body as an HTML document titled ``title``, normalised so that
    a cosmetic re-render gives the same text; None when it holds no text."""
    soup = BeautifulSoup(body, "lxml")
    root = soup.body
    if root is None:
        return None
    for comment in root.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in root.select(_DROPPED):
        tag.decompose()
    for tag in root.find_all(True):
        tag.attrs = {k: v for k, v in tag.attrs.items() if k in _KEPT_ATTRIBUTES}
    for text in root.find_all(string=True):
        if type(text) is NavigableString and text.find_parent("pre") is None:
            text.replace_with(_WHITESPACE.sub(" ", str(text)))
    if not root.get_text(strip=True):
        return None
    content = root.decode_contents()
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><main>{content}</main></body></html>"
    )
