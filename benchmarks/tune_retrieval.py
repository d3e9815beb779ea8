"""Choose BM25 and fusion parameters on a BEIR dataset's TRAIN split.

    .venv/bin/python benchmarks/tune_retrieval.py --beir ../shared/benchmarks/scifact

Never tune on the test split: the defaults in config.py come from this script's
train-split figures, and `ragline eval retrieval` reports them on test. The grid is
small on purpose (k1, b, context weight for BM25; dense weight and k for the
fusion; the candidate depth is the evaluation's 300 chunks). Prints a table per stage and writes
benchmarks/results/tune_<dataset>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    if args.split == "test":
        parser.error("tune on train (or dev), never on test")

    from ragline.config import get_settings
    from ragline.eval.beir import BeirDataset
    from ragline.eval.retrieval import QuerySet, collection_for, score_mode
    from ragline.ingest.pipeline import Pipeline
    from ragline.search.hybrid import Searcher

    settings = get_settings()
    pipeline = Pipeline.from_settings(settings)
    dataset = BeirDataset(args.beir)
    collection = collection_for(dataset)
    report = pipeline.sync(dataset.source(), collection=collection)
    print(f"index: {report.unchanged} unchanged, {report.added} added, {report.embedded} embedded")
    queries = QuerySet.load(
        dataset, args.split, Searcher(pipeline.engine, settings, pipeline.embedder)
    )
    results: dict[str, Any] = {
        "split": args.split,
        "queries": len(queries.ids),
        "lexical": [],
        "hybrid": [],
    }

    def run(mode: str, **overrides: float) -> float:
        tuned = settings.model_copy(update=overrides)
        searcher = Searcher(pipeline.engine, tuned, pipeline.embedder)
        figures = score_mode(searcher, queries, mode, collection)  # type: ignore[arg-type]
        row = {
            **overrides,
            "ndcg@10": round(figures.ndcg_at_10, 4),
            "recall@100": round(figures.recall_at_100, 4),
        }
        results[mode].append(row)
        print(
            f"{mode:>7} {overrides}  nDCG@10 {figures.ndcg_at_10:.4f}  "
            f"R@100 {figures.recall_at_100:.4f}"
        )
        return figures.ndcg_at_10

    best_lexical: dict[str, float] = {}
    best = -1.0
    for k1, b, context in itertools.product((0.9, 1.2, 1.5), (0.75, 0.9), (1.0, 2.0, 3.0)):
        overrides = {"bm25_k1": k1, "bm25_b": b, "bm25_context_weight": context}
        score = run("lexical", **overrides)
        if score > best:
            best, best_lexical = score, overrides

    best_hybrid: dict[str, float] = dict(best_lexical)
    best = -1.0
    for dense_weight, rrf_k in itertools.product((0.6, 0.8, 1.0, 1.2, 1.5), (30, 60)):
        overrides = {**best_lexical, "dense_weight": dense_weight, "rrf_k": rrf_k}
        score = run("hybrid", **overrides)
        if score > best:
            best, best_hybrid = score, overrides

    results["best_lexical"] = best_lexical
    results["best_hybrid"] = best_hybrid
    out = ROOT / "benchmarks" / "results" / f"tune_{dataset.name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"best lexical {best_lexical}\nbest hybrid {best_hybrid}\n"
        f"written to {out.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
