"""Parse times of hostile inputs (deep nesting, many siblings, unclosed brackets,
one line per PDF page); printed and written to benchmarks/results/hostile_inputs.json.

    .venv/bin/python benchmarks/hostile_inputs.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from fpdf import FPDF

from ragline.ingest.parsers import parser_for

RESULTS = Path(__file__).parent / "results" / "hostile_inputs.json"


def _html(body: str) -> bytes:
    return f"<html><body>{body}</body></html>".encode()


def _pdf(pages: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(0, 6, f"Reading {n} was logged at the dock.")
    return bytes(pdf.output())


CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "div x50000 nested": ("x.html", lambda: _html("<div>" * 50_000 + "x" + "</div>" * 50_000)),
    "table x50000 nested": (
        "x.html",
        lambda: _html("<table><tr><td>" * 50_000 + "x" + "</td></tr></table>" * 50_000),
    ),
    "ul x50000 nested": (
        "x.html",
        lambda: _html("<ul><li>" * 50_000 + "x" + "</li></ul>" * 50_000),
    ),
    "p x100000 siblings": ("x.html", lambda: _html("<p>x</p>" * 100_000)),
    "markdown [ x200000": ("x.md", lambda: b"[" * 200_000),
    "markdown > x50000": ("x.md", lambda: b"> " * 50_000 + b"quote\n"),
    "pdf 1000 pages, one line each": ("x.pdf", lambda: _pdf(1_000)),
}


def main() -> None:
    results = []
    for label, (name, build) in CASES.items():
        data = build()
        parser = parser_for(name)
        assert parser is not None
        started = time.process_time()
        doc = parser.parse(data, name=name)
        seconds = time.process_time() - started
        results.append(
            {"case": label, "bytes": len(data), "blocks": len(doc.blocks), "cpu_s": seconds}
        )
        print(f"{label:32} {len(data):>10,} B {len(doc.blocks):>7} blocks {seconds:7.3f} s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
