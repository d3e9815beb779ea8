from __future__ import annotations

import datetime as dt
import io

import pytest
from fpdf import FPDF

from ragline.domain import DocType
from ragline.errors import ParseError
from ragline.ingest.parsers import parser_for
from ragline.ingest.parsers.html import HtmlParser
from ragline.ingest.parsers.markdown import MarkdownParser
from ragline.ingest.parsers.pdf import PdfParser
from ragline.ingest.parsers.text import TextParser


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.set_creation_date(dt.datetime(2024, 5, 6, tzinfo=dt.UTC))
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def test_parser_by_suffix() -> None:
    assert isinstance(parser_for("a/B.MD"), MarkdownParser)
    assert isinstance(parser_for("x.htm"), HtmlParser)
    assert isinstance(parser_for("x.pdf"), PdfParser)
    assert isinstance(parser_for("notes.txt"), TextParser)
    assert parser_for("image.png") is None


class TestMarkdown:
    DOC = b"""---
title: Field guide
date: 2025-03-14
team: ops
---
Intro paragraph before any heading.

# Field guide

## Install

Mount the bracket.

### Cables

Route the **sonde cable** through the [gland](https://example.com).

```toml
# not a heading
interval = 300
```

Setext heading
--------------

| Part | Torque |
|------|--------|
| M8   | 12 Nm  |
"""

    def test_sections_title_date_and_metadata(self) -> None:
        doc = MarkdownParser().parse(self.DOC, name="guide.md")
        assert doc.title == "Field guide"
        assert doc.doc_date == dt.date(2025, 3, 14)
        assert doc.metadata == {"team": "ops"}
        assert doc.doc_type is DocType.MARKDOWN
        by_text = {b.text: b for b in doc.blocks}
        assert by_text["Intro paragraph before any heading."].section == ()
        assert by_text["Mount the bracket."].section == ("Install",)
        cables = by_text["Route the sonde cable through the gland."]
        assert cables.section == ("Install", "Cables")

    def test_code_fences_hide_headings_and_stay_whole(self) -> None:
        doc = MarkdownParser().parse(self.DOC, name="guide.md")
        code = [b for b in doc.blocks if b.kind == "code"]
        assert [b.text for b in code] == ["# not a heading\ninterval = 300"]
        assert code[0].section == ("Install", "Cables")

    def test_setext_headings_and_tables(self) -> None:
        doc = MarkdownParser().parse(self.DOC, name="guide.md")
        table = next(b for b in doc.blocks if b.kind == "table")
        assert table.section == ("Setext heading",)
        assert "| M8 | 12 Nm |" in table.text

    def test_title_falls_back_to_file_name(self) -> None:
        doc = MarkdownParser().parse(b"Just text.", name="docs/quick_start-guide.md")
        assert doc.title == "quick start guide"

    def test_only_headings_is_an_error(self) -> None:
        with pytest.raises(ParseError, match="no text"):
            MarkdownParser().parse(b"# Title\n\n## Empty\n", name="x.md")


class TestHtml:
    PAGE = b"""<!doctype html><html><head><title>Telemetry API</title>
<meta name="date" content="2025-02-01T10:00:00Z"><style>p {color: red}</style>
<script>window.track = 1;</script></head><body>
<header><a href="/">Home</a> Site header</header>
<nav><ul><li>Docs</li><li>Support</li></ul></nav>
<div class="cookie-banner">We use cookies. Accept?</div>
<main>
<h1>Telemetry API</h1>
<p>The station uploads readings over <b>HTTPS</b>.</p>
<h2>Upload interval</h2>
<p>Default 300 seconds.<br>Configurable from 60 to 3600 seconds.</p>
<ul><li>First item</li><li>Second item</li></ul>
<table><tr><th>Field</th><th>Unit</th></tr><tr><td>temp</td><td>degC</td></tr></table>
<pre>GET /v1/readings</pre>
</main>
<footer>Copyright Tidewater</footer></body></html>"""

    def test_boilerplate_is_dropped(self) -> None:
        doc = HtmlParser().parse(self.PAGE, name="api.html")
        text = "\n".join(b.text for b in doc.blocks)
        for junk in ("Site header", "Docs", "cookies", "Copyright", "window.track", "color"):
            assert junk not in text

    def test_headings_tables_and_metadata(self) -> None:
        doc = HtmlParser().parse(self.PAGE, name="api.html")
        assert doc.title == "Telemetry API"
        assert doc.doc_date == dt.date(2025, 2, 1)
        by_text = {b.text: b for b in doc.blocks}
        assert by_text["The station uploads readings over HTTPS."].section == ()
        interval = by_text["Default 300 seconds.\nConfigurable from 60 to 3600 seconds."]
        assert interval.section == ("Upload interval",)
        assert by_text["Field | Unit\ntemp | degC"].kind == "table"
        assert by_text["GET /v1/readings"].kind == "code"
        assert "First item" in by_text
        assert "Second item" in by_text

    def test_page_without_content_is_an_error(self) -> None:
        with pytest.raises(ParseError, match="no text"):
            HtmlParser().parse(
                b"<html><body><nav>Menu</nav><script>x()</script></body></html>", name="x.html"
            )


class TestPdf:
    def test_pages_are_kept_and_blank_pages_reported(self) -> None:
        data = make_pdf(
            ["First page text about the sonde.", "", "Third page on batteries."], "Manual"
        )
        doc = PdfParser().parse(data, name="manual.pdf")
        assert doc.title == "Manual"
        assert doc.doc_date == dt.date(2024, 5, 6)
        assert [(b.page, b.text) for b in doc.blocks] == [
            (1, "First page text about the sonde."),
            (3, "Third page on batteries."),
        ]
        assert doc.warnings == ["page 2: no extractable text (scanned image? no OCR)"]
        assert doc.metadata == {"pages": 3}

    def test_layout_headings_paragraphs_and_running_headers(self) -> None:
        wrapped = (
            "The conductivity cell must be cleaned every month with a soft brush and a mild "
            "detergent, then rinsed with deionized water before the probe is put back."
        )
        pages = [
            f"Sonde Maintenance Guide\n\nCleaning the cell\n\n{wrapped}\n\nStoring the sonde\n\n"
            "Keep the sonde in its storage cup with a few drops of water.",
            f"Tidewater - Sonde Maintenance Guide\n\nReplacing the wiper\n\n{wrapped}",
        ]
        doc = PdfParser().parse(make_pdf(pages), name="guide.pdf")
        assert doc.title == "Sonde Maintenance Guide"
        sections = [(b.section, b.page) for b in doc.blocks]
        assert sections == [
            (("Cleaning the cell",), 1),
            (("Storing the sonde",), 1),
            (("Replacing the wiper",), 2),
        ]
        assert doc.blocks[0].text == wrapped  # wrapped lines joined again
        assert all("Tidewater -" not in b.text for b in doc.blocks)

    def test_corrupt_pdf(self) -> None:
        with pytest.raises(ParseError, match="PDF"):
            PdfParser().parse(b"%PDF-1.4\n" + bytes(range(256)) * 8, name="bad.pdf")

    def test_not_a_pdf(self) -> None:
        with pytest.raises(ParseError, match="not a PDF"):
            PdfParser().parse(b"<html>oops</html>", name="bad.pdf")

    def test_pdf_without_text(self) -> None:
        with pytest.raises(ParseError, match="no extractable text on any of the 2 pages"):
            PdfParser().parse(make_pdf(["", ""]), name="scan.pdf")

    def test_encrypted_pdf(self) -> None:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter()
        for page in PdfReader(io.BytesIO(make_pdf(["secret text"]))).pages:
            writer.add_page(page)
        writer.encrypt(user_password="hunter2", owner_password="owner")
        out = io.BytesIO()
        writer.write(out)
        with pytest.raises(ParseError, match="encrypted"):
            PdfParser().parse(out.getvalue(), name="locked.pdf")


class TestText:
    def test_title_line_and_paragraphs(self) -> None:
        doc = TextParser().parse(b"Safety notice\n\nFirst paragraph.\n\nSecond one.", name="s.txt")
        assert doc.title == "Safety notice"
        assert [b.text for b in doc.blocks] == ["First paragraph.", "Second one."]

    def test_title_like_lines_start_sections(self) -> None:
        data = b"WARRANTY\n\n1. Scope\n\nCovers the station.\n\n2. Period\n\n36 months.\n\nThe end"
        doc = TextParser().parse(data, name="w.txt")
        assert [(b.section, b.text) for b in doc.blocks] == [
            (("1. Scope",), "Covers the station."),
            (("2. Period",), "36 months."),
            (("2. Period",), "The end"),
        ]

    def test_sentence_first_line_is_not_a_title(self) -> None:
        doc = TextParser().parse(b"This file starts with a sentence.\n\nMore.", name="notes.txt")
        assert doc.title == "notes"

    def test_whitespace_only(self) -> None:
        with pytest.raises(ParseError, match="no text"):
            TextParser().parse(b" \n\t\n", name="blank.txt")
