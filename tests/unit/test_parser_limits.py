"""Hostile inputs: parsing costs time linear in the input, whatever its shape, stops
at the document's parse budget, and PDF running headers are told from content."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from fpdf import FPDF

from ragline.cancel import Watch, watching
from ragline.errors import Cancelled, ParseError
from ragline.ingest.parsers.html import HtmlParser
from ragline.ingest.parsers.markdown import MarkdownParser
from ragline.ingest.parsers.pdf import PdfParser
from ragline.ingest.parsers.record import RecordParser


def page(body: str) -> bytes:
    return f"<html><head><title>Hostile</title></head><body>{body}</body></html>".encode()


def timed_parse(data: bytes, name: str = "x.html") -> tuple[float, list[str]]:
    parser = MarkdownParser() if name.endswith(".md") else HtmlParser()
    # CPU time of this process: the bound holds on a machine busy with other work.
    started = time.process_time()
    doc = parser.parse(data, name=name)
    return time.process_time() - started, [b.text for b in doc.blocks]


def test_fifty_thousand_nested_divs_parse_in_under_two_seconds() -> None:
    data = page("<div>" * 50_000 + "Rinse the probe." + "</div>" * 50_000)
    assert len(data) > 550_000
    seconds, texts = timed_parse(data)
    assert texts == ["Rinse the probe."]
    assert seconds < 2.0


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("<table><tr><td>", "</td></tr></table>"), ("<ul><li>", "</li></ul>")],
    ids=["tables", "lists"],
)
def test_deeply_nested_tables_and_lists_are_linear(opening: str, closing: str) -> None:
    data = page(f"{opening}cell " * 20_000 + "end" + closing * 20_000)
    seconds, texts = timed_parse(data)
    joined = "\n".join(texts)
    # Each cell's text once: a nested table's rows are not repeated in the outer ones.
    assert joined.count("cell") == 20_000
    assert seconds < 3.0


def test_a_hundred_thousand_siblings_are_linear() -> None:
    seconds, texts = timed_parse(page("<p>Reading taken.</p>" * 100_000))
    assert len(texts) == 100_000
    assert seconds < 5.0


def test_nested_tables_keep_each_cell_in_its_own_row() -> None:
    data = page(
        "<table><caption>Probes</caption><tr><th>Name</th><th>Range</th></tr>"
        "<tr><td>Oxygen</td><td><table><tr><td>0-20</td><td>mg/L</td></tr></table></td></tr>"
        "</table>"
    )
    _, texts = timed_parse(data)
    assert texts == ["Probes\nName | Range\nOxygen | \n0-20 | mg/L"]


def test_markdown_runs_of_unclosed_brackets_are_linear() -> None:
    seconds, texts = timed_parse(b"[" * 200_000 + b"[a](" * 50_000, name="x.md")
    assert texts
    assert seconds < 2.0


def test_deep_markdown_lists_and_quotes() -> None:
    lists = "\n".join("  " * min(i, 100) + "- step" for i in range(20_000))
    quotes = "> " * 50_000 + "deep quote\n"
    for text in (lists, quotes):
        seconds, texts = timed_parse(text.encode(), name="x.md")
        assert texts
        assert seconds < 3.0


def test_json_nested_too_deep_is_a_parse_error() -> None:
    data = json.dumps({"text": "x"}).encode()[:-1] + b', "metadata": ' + b"[" * 100_000
    data += b"]" * 100_000 + b"}"
    with pytest.raises(ParseError, match="nested too deeply"):
        RecordParser().parse(data, name="deep.json")


def test_parsers_stop_at_the_parse_budget() -> None:
    budget = Watch.limit(0, lambda: ParseError("parsing took longer than 0 s"))
    with watching(budget), pytest.raises(ParseError, match="longer than 0 s"):
        HtmlParser().parse(page("<p>line</p>" * 20_000), name="big.html")
    with watching(budget), pytest.raises(ParseError, match="longer than 0 s"):
        MarkdownParser().parse(b"line\n" * 20_000, name="big.md")


def test_a_cancelled_job_stops_a_pdf_parse() -> None:
    job = Watch()
    job.cancel("cancelled by key:7")
    with watching(job), pytest.raises(Cancelled, match="key:7"):
        PdfParser().parse(make_pdf([["Some text."]] * 3), name="m.pdf")


def make_pdf(pages: list[list[str]]) -> bytes:
    pdf = FPDF()
    pdf.set_creation_date(dt.datetime(2024, 5, 6, tzinfo=dt.UTC))
    pdf.set_font("Helvetica", size=11)
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def pdf_lines(pages: list[list[str]]) -> list[str]:
    doc = PdfParser().parse(make_pdf(pages), name="m.pdf")
    return [b.text for b in doc.blocks]


def test_a_page_with_one_line_keeps_it() -> None:
    pages = [[f"Reading {n} was logged at the dock."] for n in range(1, 51)]
    texts = pdf_lines(pages)
    assert texts == [lines[0] for lines in pages]


def test_numbered_steps_at_page_edges_are_kept() -> None:
    pages = [
        [f"Step {n + 10}: check the seal.", "Wipe the o-ring and look for cracks.", "Then go on."]
        for n in range(1, 11)
    ]
    text = " ".join(pdf_lines(pages))
    for n in range(1, 11):
        assert f"Step {n + 10}: check the seal." in text


def test_real_running_headers_and_footers_are_removed() -> None:
    pages = [
        [
            f"Tidewater sonde guide - page {n}",
            f"Body text number {n * 7} about the wiper.",
            "Tidewater Instruments Ltd",
        ]
        for n in range(1, 11)
    ]
    texts = pdf_lines(pages)
    assert all("Tidewater" not in t for t in texts)
    assert [t for t in texts if "Body text" in t] == [
        f"Body text number {n * 7} about the wiper." for n in range(1, 11)
    ]
