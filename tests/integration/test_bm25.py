"""BM25 computed in PostgreSQL equals the textbook formula, in the searched scope.

    idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))
    score  = sum over query terms of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))

The documents use words whose English stems are themselves (or plain), and no stop
words, so that term frequencies and lengths can be counted by eye.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.domain import Filter, Hit
from ragline.embedding.base import Embedder
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.pipeline import Pipeline
from ragline.search.hybrid import Searcher

K1, B = 1.2, 0.75
DOCS = {
    "d1.txt": "sensor drift sensor",  # sensor 2, length 3
    "d2.txt": "pump water water water",  # pump 1, length 4
    "d3.txt": "sensor pump cable probe water",  # sensor 1, pump 1, length 5
    "d4.txt": "cable probe",  # length 2
}


def bm25(tf: float, df: int, n: int, length: float, avg_length: float) -> float:
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg_length))


def write(folder: Path, docs: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text + "\n")
    return folder


@pytest.fixture
def body_only(settings: Settings) -> Settings:
    """Titles (here: the file names) do not count, so a document is its text alone."""
    return settings.model_copy(
        update={"bm25_k1": K1, "bm25_b": B, "bm25_context_weight": 0.0, "candidate_depth": 100}
    )


@pytest.fixture
def pipeline(clean_db: Engine, embedder: Embedder, body_only: Settings) -> Pipeline:
    return Pipeline(clean_db, embedder, body_only)


def scores(searcher: Searcher, query: str, **filters: str) -> dict[str, float]:
    hits: list[Hit] = searcher.search(query, mode="lexical", k=100, search_filter=Filter(**filters))
    return {hit.doc_id: hit.score for hit in hits}


def test_scores_match_the_textbook(pipeline: Pipeline, tmp_path: Path, body_only: Settings) -> None:
    pipeline.sync(FileSource(write(tmp_path / "bm", DOCS)), collection="bm")
    searcher = Searcher(pipeline.engine, body_only, pipeline.embedder)

    got = scores(searcher, "sensor pump", collection="bm")

    n, avg = 4, (3 + 4 + 5 + 2) / 4
    expected = {
        "d1.txt": bm25(2, 2, n, 3, avg),
        "d2.txt": bm25(1, 2, n, 4, avg),
        "d3.txt": bm25(1, 2, n, 5, avg) + bm25(1, 2, n, 5, avg),
    }
    assert got.keys() == expected.keys()
    for doc_id, score in expected.items():
        assert got[doc_id] == pytest.approx(score, abs=1e-6)
    assert list(got) == sorted(expected, key=expected.__getitem__, reverse=True)


def test_statistics_follow_updates_and_deletes(
    pipeline: Pipeline, tmp_path: Path, body_only: Settings
) -> None:
    folder = write(tmp_path / "bm", DOCS)
    pipeline.sync(FileSource(folder), collection="bm")
    searcher = Searcher(pipeline.engine, body_only, pipeline.embedder)

    (folder / "d4.txt").write_text("sensor sensor sensor cable\n")  # now sensor 3, length 4
    assert pipeline.sync(FileSource(folder), collection="bm").updated == 1
    got = scores(searcher, "sensor", collection="bm")
    n, avg = 4, (3 + 4 + 5 + 4) / 4
    assert got == pytest.approx(
        {
            "d1.txt": bm25(2, 3, n, 3, avg),
            "d3.txt": bm25(1, 3, n, 5, avg),
            "d4.txt": bm25(3, 3, n, 4, avg),
        },
        abs=1e-6,
    )

    (folder / "d2.txt").unlink()
    assert pipeline.sync(FileSource(folder), collection="bm").deleted == 1
    got = scores(searcher, "pump", collection="bm")
    n, avg = 3, (3 + 5 + 4) / 3
    assert got == pytest.approx({"d3.txt": bm25(1, 1, n, 5, avg)}, abs=1e-6)
    assert stored_stats(pipeline.engine) == recounted_stats(pipeline.engine)


def stored_stats(engine: Engine) -> set[tuple[str, str, int, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tenant, collection, chunks, len_text, len_context FROM bm25_stats")
        ).all()
    return {tuple(row) for row in rows if row.chunks}  # type: ignore[misc]


def recounted_stats(engine: Engine) -> set[tuple[str, str, int, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT tenant, collection, count(*), sum(len_text), sum(len_context) "
                "FROM chunks GROUP BY tenant, collection"
            )
        ).all()
    return {tuple(row) for row in rows}  # type: ignore[misc]


def test_statistics_are_those_of_the_searched_collection_and_tenant(
    pipeline: Pipeline, tmp_path: Path, body_only: Settings
) -> None:
    pipeline.sync(FileSource(write(tmp_path / "bm", DOCS)), collection="bm")
    other = {"e1.txt": "sensor sensor", "e2.txt": "sensor", "e3.txt": "probe"}
    pipeline.sync(FileSource(write(tmp_path / "other", other)), collection="other")
    pipeline.sync(
        FileSource(write(tmp_path / "t2", {"f1.txt": "sensor " * 30})),
        collection="bm",
        tenant="tenant-two",
    )
    searcher = Searcher(pipeline.engine, body_only, pipeline.embedder)

    # Within "bm": the other collection and the other tenant change nothing.
    in_bm = scores(searcher, "sensor", collection="bm")
    n, avg = 4, 14 / 4
    assert in_bm == pytest.approx(
        {"d1.txt": bm25(2, 2, n, 3, avg), "d3.txt": bm25(1, 2, n, 5, avg)}, abs=1e-6
    )

    # Across the tenant's collections: N, df and the average length are the union's.
    everywhere = scores(searcher, "sensor")
    n, avg = 7, (14 + 2 + 1 + 1) / 7
    assert everywhere == pytest.approx(
        {
            "d1.txt": bm25(2, 4, n, 3, avg),
            "d3.txt": bm25(1, 4, n, 5, avg),
            "e1.txt": bm25(2, 4, n, 2, avg),
            "e2.txt": bm25(1, 4, n, 1, avg),
        },
        abs=1e-6,
    )

    # The other tenant sees only its own document, scored with its own statistics.
    assert stored_stats(pipeline.engine) == recounted_stats(pipeline.engine)
    theirs = searcher.search("sensor", mode="lexical", k=10, tenant="tenant-two")
    assert [hit.doc_id for hit in theirs] == ["f1.txt"]
    assert theirs[0].score == pytest.approx(bm25(30, 1, 1, 30, 30), abs=1e-6)


def test_other_filters_restrict_candidates_not_statistics(
    pipeline: Pipeline, tmp_path: Path, body_only: Settings
) -> None:
    pipeline.sync(FileSource(write(tmp_path / "bm", DOCS)), collection="bm")
    searcher = Searcher(pipeline.engine, body_only, pipeline.embedder)

    got = scores(searcher, "sensor", collection="bm", doc_id="d3.txt")

    assert got == pytest.approx({"d3.txt": bm25(1, 2, 4, 5, 14 / 4)}, abs=1e-6)


def test_title_and_section_terms_count_with_their_weight(
    clean_db: Engine, embedder: Embedder, body_only: Settings, tmp_path: Path
) -> None:
    weighted = body_only.model_copy(update={"bm25_context_weight": 2.0})
    folder = write(
        tmp_path / "md",
        {
            "a.md": "# Pump\n\nwater water probe",  # context "Pump": pump 1; text length 3
            "b.md": "# Cable\n\npump water",  # context "Cable"; text pump 1, length 2
        },
    )
    pipeline = Pipeline(clean_db, embedder, weighted)
    pipeline.sync(FileSource(folder), collection="md")
    searcher = Searcher(clean_db, weighted, embedder)

    got = scores(searcher, "pump", collection="md")

    # tf and length count a context term twice: a: tf 2, len 3 + 2; b: tf 1, len 2 + 2.
    n, avg = 2, ((3 + 2) + (2 + 2)) / 2
    assert got == pytest.approx(
        {"a.md": bm25(2, 2, n, 5, avg), "b.md": bm25(1, 2, n, 4, avg)}, abs=1e-6
    )
