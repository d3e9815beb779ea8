"""The retrieval evaluation harness on a small BEIR-format dataset."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ragline.cli import app
from ragline.config import Settings
from ragline.domain import Filter, Hit
from ragline.embedding.base import Embedder
from ragline.search.hybrid import Searcher

CORPUS = [
    ("d1", "Dissolved oxygen sensors", "Optical oxygen sensors measure luminescence lifetime."),
    ("d2", "Conductivity cells", "A conductivity cell measures how well water carries current."),
    ("d3", "Solar panels", "Photovoltaic panels charge the station battery during the day."),
    ("d4", "Cellular modems", "The modem registers on the LTE-M network to upload readings."),
    ("d5", "Turbidity", "Turbidity sensors measure scattered infrared light in the water."),
    (
        "d6",
        "Ice and winter",
        "Frozen rivers can crush a sonde that hangs too close to the surface.",
    ),
    ("d7", "Lead-acid batteries", "A lead-acid battery should not be discharged below half."),
    ("d8", "Depth sensors", "Pressure transducers give the water depth above the sonde."),
]
QUERIES = {
    "q1": "optical luminescence oxygen sensors",
    "q2": "photovoltaic panels charge the battery",
    "q3": "pressure transducers water depth",
    "q9": "a query without judgments is not evaluated",
}
QRELS = [("q1", "d1", 1), ("q2", "d3", 1), ("q2", "d7", 1), ("q3", "d8", 1)]


def write_dataset(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for doc_id, title, text in CORPUS:
            f.write(
                json.dumps({"_id": doc_id, "title": title, "text": text, "metadata": {}}) + "\n"
            )
    with (folder / "queries.jsonl").open("w") as f:
        for query_id, text in QUERIES.items():
            f.write(json.dumps({"_id": query_id, "text": text, "metadata": {}}) + "\n")
    rows = "".join(f"{q}\t{d}\t{r}\n" for q, d, r in QRELS)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


def test_eval_reports_every_mode_and_reuses_the_index(clean_db: Engine, tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "tiny")
    runner = CliRunner()

    first = runner.invoke(app, ["eval", "retrieval", "--beir", str(dataset), "--json"])
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)

    assert set(result) == {"lexical", "dense", "hybrid"}
    for figures in result.values():
        assert set(figures) == {"ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms"}
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
        assert figures["recall@100"] == 1.0  # eight documents: every one is retrieved
    # Each query repeats words of its documents: BM25 puts them on top.
    assert result["lexical"]["mrr@10"] == 1.0
    assert result["lexical"]["ndcg@10"] == pytest.approx(1.0)

    second = runner.invoke(
        app, ["eval", "retrieval", "--beir", str(dataset), "--mode", "dense", "--json"]
    )
    assert second.exit_code == 0, second.output
    assert set(json.loads(second.stdout)) == {"dense"}
    with clean_db.connect() as conn:
        last = conn.execute(
            sa.text(
                "SELECT unchanged, embedded, collection FROM sync_runs ORDER BY id DESC LIMIT 1"
            )
        ).one()
    assert (last.unchanged, last.embedded, last.collection) == (8, 0, "beir:tiny")

    table = runner.invoke(app, ["eval", "retrieval", "--beir", str(dataset), "--mode", "hybrid"])
    assert table.exit_code == 0, table.output
    assert "nDCG@10" in table.stdout
    assert "hybrid" in table.stdout


def test_missing_dataset_files_are_explained(clean_db: Engine, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "retrieval", "--beir", str(tmp_path)])
    assert result.exit_code == 78  # EX_CONFIG
    assert "corpus.jsonl" in result.output or "qrels" in result.output


class KeywordReranker:
    """Puts hits that mention a word first; records how many hits it was given."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.seen = 0

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        self.seen = len(hits)
        rescored = [replace(h, score=float(self.word in h.text.lower())) for h in hits]
        return sorted(rescored, key=lambda h: h.score, reverse=True)


def test_a_reranker_reorders_the_fused_hits(
    clean_db: Engine, embedder: Embedder, settings: Settings, tmp_path: Path
) -> None:
    from ragline.eval.beir import BeirDataset
    from ragline.ingest.pipeline import Pipeline

    dataset = BeirDataset(write_dataset(tmp_path / "tiny"))
    Pipeline(clean_db, embedder, settings).sync(dataset.source(), collection="rr")
    reranker = KeywordReranker("frozen")
    tuned = settings.model_copy(update={"rerank_depth": 8})
    searcher = Searcher(clean_db, tuned, embedder, reranker=reranker)

    hits = searcher.search("sensors in the water", k=3, search_filter=Filter(collection="rr"))

    assert reranker.seen == 8  # the reranker reads rerank_depth hits, not just k
    assert [hit.score for hit in hits] == [1.0, 0.0, 0.0]
    assert hits[0].doc_id == "d6"  # the only passage that mentions frozen rivers
