"""Dense, lexical and hybrid search over the indexed sample corpus."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.domain import Filter
from ragline.embedding.base import Embedder
from ragline.errors import RetrievalError
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.pipeline import Pipeline
from ragline.search.hybrid import Searcher
from tests.conftest import SAMPLES

MODES = ("dense", "lexical", "hybrid")

# One short document with metadata of its own: a filter on it keeps one chunk of
# the index (well under 1%).
NIGHT_SHIFT = """---
shift: night
---
# Night shift checklist

Check the battery voltage and the sonde wiper before leaving the station at night.
"""


@pytest.fixture(scope="module")
def searcher(
    engine: Engine, embedder: Embedder, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Searcher:
    with engine.begin() as conn:
        conn.execute(
            sa.text("TRUNCATE documents, chunks, postings, bm25_stats, sync_runs RESTART IDENTITY")
        )
    corpus = tmp_path_factory.mktemp("search") / "corpus"
    shutil.copytree(SAMPLES, corpus)
    (corpus / "night-shift.md").write_text(NIGHT_SHIFT)
    pipeline = Pipeline(engine, embedder, settings)
    assert pipeline.sync(FileSource(corpus), collection="samples").added == 21
    assert pipeline.sync(FileSource(corpus / "support"), collection="support").added == 7
    return Searcher(engine, settings, embedder)


def test_paraphrase_finds_the_passage_by_meaning(searcher: Searcher) -> None:
    query = "how do I set up the oxygen probe so its readings are accurate"
    hits = searcher.search(query, mode="dense", k=3)

    assert hits[0].doc_id == "guides/calibration.md"
    assert hits[0].section == "Calibrating the dissolved-oxygen sensor"
    assert hits[0].title
    assert "water-saturated air" in " ".join(hit.text for hit in hits)


def test_rare_code_is_found_lexically(searcher: Searcher) -> None:
    hits = searcher.search("E-4471", mode="lexical", k=3)

    assert hits[0].doc_id == "support/troubleshooting-guide.pdf"
    assert "E-4471" in hits[0].text
    assert hits[0].section == "E-4471: Conductivity reading outside calibrated range"
    assert hits[0].page == 2


def test_hybrid_fuses_both_lists(searcher: Searcher, settings: Settings) -> None:
    query = "telemetry upload interval seconds"
    dense = {h.chunk_id for h in searcher.search(query, mode="dense", k=50)}
    lexical = {h.chunk_id for h in searcher.search(query, mode="lexical", k=50)}
    hybrid = searcher.search(query, mode="hybrid", k=5)

    assert hybrid[0].doc_id == "reference/telemetry-api.html"
    assert "300 seconds" in hybrid[0].text
    assert {h.chunk_id for h in hybrid} <= dense | lexical
    top = 1 / (settings.rrf_k + 1)
    assert top < hybrid[0].score <= 2 * top + 1e-9
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)


def test_hybrid_weights_can_favour_one_list(searcher: Searcher, settings: Settings) -> None:
    query = "what happens when the conductivity reading is out of range"
    lexical_only = Searcher(
        searcher.engine, settings.model_copy(update={"dense_weight": 0.0}), searcher.embedder
    )
    expected = [h.chunk_id for h in searcher.search(query, mode="lexical", k=5)]
    assert [h.chunk_id for h in lexical_only.search(query, mode="hybrid", k=5)] == expected


@pytest.mark.parametrize("mode", MODES)
def test_type_filter(searcher: Searcher, mode: str) -> None:
    hits = searcher.search("calibration", mode=mode, k=20, search_filter=Filter(doc_type="pdf"))
    assert hits
    assert {h.doc_type for h in hits} == {"pdf"}


@pytest.mark.parametrize("mode", MODES)
def test_document_and_collection_filters(searcher: Searcher, mode: str) -> None:
    only = Filter(collection="support", doc_id="faq.md")
    hits = searcher.search("battery", mode=mode, k=50, search_filter=only)
    assert hits
    assert {(h.collection, h.doc_id) for h in hits} == {("support", "faq.md")}


@pytest.mark.parametrize("mode", MODES)
def test_date_filter(searcher: Searcher, engine: Engine, mode: str) -> None:
    day = dt.date(2025, 3, 14)
    with engine.connect() as conn:
        expected = set(
            conn.execute(
                sa.text(
                    "SELECT doc_id FROM documents WHERE doc_date = :d AND collection = 'samples'"
                ),
                {"d": day},
            ).scalars()
        )
    assert expected  # front matter and PDF metadata carry this date

    hits = searcher.search(
        "installation",
        mode=mode,
        k=100,
        search_filter=Filter(collection="samples", date_from=day, date_to=day),
    )
    assert hits
    assert {h.doc_id for h in hits} <= expected


@pytest.mark.parametrize("mode", MODES)
def test_filter_matching_nothing_returns_nothing(searcher: Searcher, mode: str) -> None:
    hits = searcher.search("battery", mode=mode, k=5, search_filter=Filter(collection="nope"))
    assert hits == []


def test_another_tenant_sees_nothing(searcher: Searcher) -> None:
    assert searcher.search("battery", k=5, tenant="someone-else") == []


def test_stop_words_only_query_is_handled(searcher: Searcher) -> None:
    assert searcher.search("the of and", mode="lexical", k=5) == []
    assert searcher.search("the of and", mode="hybrid", k=5)  # dense still answers


def test_quotes_and_backslashes_in_queries_are_safe(searcher: Searcher) -> None:
    for query in ("it's O'Brien's \\ probe", "'; DROP TABLE chunks; --", "a:b & c | !d"):
        searcher.search(query, mode="hybrid", k=3)
    assert searcher.search("E-4471", mode="lexical", k=1)


def test_empty_query_is_an_error(searcher: Searcher) -> None:
    with pytest.raises(RetrievalError, match="empty"):
        searcher.search("   ")


def test_scores_are_ordered_and_k_is_respected(searcher: Searcher) -> None:
    for mode in MODES:
        hits = searcher.search("solar panel battery", mode=mode, k=7)
        assert len(hits) == 7
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("mode", MODES)
def test_selective_filter_keeps_its_one_chunk(
    searcher: Searcher, engine: Engine, mode: str
) -> None:
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM chunks")).scalar_one()
    assert total > 100  # one chunk is under 1% of the index

    hits = searcher.search(
        "battery voltage", mode=mode, k=10, search_filter=Filter(metadata={"shift": "night"})
    )

    assert [hit.doc_id for hit in hits] == ["night-shift.md"]
