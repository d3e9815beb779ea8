"""Ingest throughput and query latency of the embedded default, on the sample corpus.

    .venv/bin/python benchmarks/core.py [--corpus samples/corpus] [--repeat 5]

Starts from an empty RAGLINE_HOME (a temporary directory), so the numbers include
embedding every chunk. Prints a table and writes benchmarks/results/core.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

QUERIES = [
    "how do I calibrate the dissolved oxygen sensor",
    "E-4471",
    "what is the default telemetry upload interval",
    "how long is the warranty",
    "battery sizing for winter at high latitude",
    "cleaning the conductivity cell",
    "what to do when the modem cannot register",
    "how should sensors be stored over winter",
    "torque for the mounting bracket bolts",
    "return authorisation number",
    "firmware 4.2 changes",
    "wiper stall warning",
    "safety when working near water",
    "configure the APN",
    "decontaminate equipment before shipping",
    "solar panel peak sun hours",
    "microSD card write failure",
    "glossary turbidity unit",
    "replace the oxygen sensing cap",
    "install the station on a bridge",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "samples" / "corpus")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the query set")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "core.json")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="ragline-bench-")
    os.environ["RAGLINE_HOME"] = home
    os.environ.pop("RAGLINE_DATABASE_URL", None)

    from ragline.config import get_settings
    from ragline.ingest.connectors.files import FileSource
    from ragline.ingest.pipeline import Pipeline
    from ragline.search.hybrid import Searcher

    settings = get_settings()
    started = time.perf_counter()
    pipeline = Pipeline.from_settings(settings)
    startup = time.perf_counter() - started

    first = pipeline.sync(FileSource(args.corpus), collection="bench")
    again = pipeline.sync(FileSource(args.corpus), collection="bench")

    searcher = Searcher(pipeline.engine, settings, pipeline.embedder)
    embed_ms: list[float] = []
    for query in QUERIES:
        t = time.perf_counter()
        pipeline.embedder.embed([query])
        embed_ms.append((time.perf_counter() - t) * 1000)
    latency: dict[str, dict[str, float]] = {}
    for mode in ("lexical", "dense", "hybrid"):
        timings = []
        for _ in range(args.repeat):
            for query in QUERIES:
                t = time.perf_counter()
                searcher.search(query, mode=mode, k=10)  # type: ignore[arg-type]
                timings.append((time.perf_counter() - t) * 1000)
        latency[mode] = {
            "p50_ms": round(percentile(timings, 0.50), 2),
            "p95_ms": round(percentile(timings, 0.95), 2),
            "mean_ms": round(statistics.fmean(timings), 2),
            "queries": len(timings),
        }

    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "corpus": {"path": str(args.corpus.relative_to(ROOT)), "documents": first.added},
        "startup_seconds": round(startup, 2),
        "first_ingest": {
            "seconds": round(first.seconds, 2),
            "chunks": first.chunks,
            "embedded": first.embedded,
            "chunks_per_second": round(first.chunks / first.seconds, 1),
            "documents_per_second": round(first.added / first.seconds, 2),
        },
        "unchanged_ingest": {"seconds": round(again.seconds, 3), "embedded": again.embedded},
        "query_embedding": {
            "p50_ms": round(percentile(embed_ms, 0.5), 2),
            "p95_ms": round(percentile(embed_ms, 0.95), 2),
        },
        "search_latency_including_query_embedding": latency,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"startup (database + model): {result['startup_seconds']} s")
    fi = result["first_ingest"]
    print(
        f"first ingest: {first.added} documents, {fi['chunks']} chunks in {fi['seconds']} s "
        f"({fi['chunks_per_second']} chunks/s, {fi['documents_per_second']} documents/s)"
    )
    print(f"unchanged re-ingest: {again.seconds:.3f} s, {again.embedded} embedded")
    print(f"query embedding: p50 {result['query_embedding']['p50_ms']} ms")
    for mode, figures in latency.items():
        print(f"search {mode:>7}: p50 {figures['p50_ms']} ms  p95 {figures['p95_ms']} ms")
    print(f"written to {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
