"""Ingesting folders into the real embedded PostgreSQL: the ledger's promises."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fpdf import FPDF
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.domain import Filter
from ragline.embedding.base import Embedder
from ragline.errors import SourceUnavailable, SyncInProgress
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.pipeline import Pipeline
from ragline.search.hybrid import Searcher

HANDBOOK = "guides/field-maintenance-handbook.md"


def chunk_rows(engine: Engine, doc_id: str) -> list[sa.Row[tuple[int, str]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT c.ordinal, c.sha256 FROM chunks c JOIN documents d "
                    "ON d.id = c.document_id WHERE d.doc_id = :doc_id ORDER BY c.ordinal"
                ),
                {"doc_id": doc_id},
            ).all()
        )


def ledger_row(engine: Engine, doc_id: str) -> sa.RowMapping:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text("SELECT * FROM documents WHERE doc_id = :doc_id"), {"doc_id": doc_id}
            )
            .mappings()
            .one()
        )


def test_sample_corpus_is_indexed_whole(
    cold_cache: Engine, pipeline: Pipeline, corpus: Path, engine: Engine
) -> None:
    report = pipeline.sync(FileSource(corpus), collection="samples")

    files = [p for p in corpus.rglob("*") if p.is_file()]
    assert len(files) == 20
    assert {p.suffix for p in files} == {".pdf", ".html", ".md", ".txt"}
    assert (report.added, report.failed, report.updated, report.deleted) == (20, 0, 0, 0)
    assert report.chunks == report.embedded > 20
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT document_id) FROM chunks")
        ).one()
        statuses = conn.execute(sa.text("SELECT DISTINCT status FROM documents")).scalars().all()
    assert stored == (report.chunks, 20)
    assert statuses == ["active"]


def test_unchanged_corpus_costs_nothing(pipeline: Pipeline, corpus: Path) -> None:
    first = pipeline.sync(FileSource(corpus), collection="samples")
    again = pipeline.sync(FileSource(corpus), collection="samples")

    assert first.added == 20
    assert (again.unchanged, again.embedded, again.chunks) == (20, 0, 0)
    assert (again.added, again.updated, again.deleted, again.failed) == (0, 0, 0, 0)


def test_touched_but_identical_file_is_unchanged(pipeline: Pipeline, corpus: Path) -> None:
    pipeline.sync(FileSource(corpus), collection="samples")
    faq = corpus / "support" / "faq.md"
    faq.write_bytes(faq.read_bytes())  # new mtime, same content

    report = pipeline.sync(FileSource(corpus), collection="samples")

    assert (report.unchanged, report.embedded) == (20, 0)


def test_editing_one_paragraph_reembeds_only_its_chunks(
    pipeline: Pipeline, corpus: Path, engine: Engine
) -> None:
    pipeline.sync(FileSource(corpus), collection="samples")
    before = chunk_rows(engine, HANDBOOK)
    handbook = corpus / HANDBOOK
    text = handbook.read_text()
    paragraphs = text.split("\n\n")
    # Rewrite one paragraph in the middle of the long handbook.
    index = next(
        i for i in range(len(paragraphs) // 2, len(paragraphs)) if len(paragraphs[i]) > 200
    )
    paragraphs[index] = (
        "Inspect the anti-fouling copper mesh at every visit and replace it when more than "
        "a third of its surface has turned green; a fouled mesh lets algae grow on the "
        "optical windows within two weeks in summer."
    )
    handbook.write_text("\n\n".join(paragraphs))

    report = pipeline.sync(FileSource(corpus), collection="samples")

    after = chunk_rows(engine, HANDBOOK)
    assert (report.updated, report.unchanged, report.added) == (1, 19, 0)
    assert len(before) >= 20
    assert 1 <= report.embedded <= 3
    assert report.chunks == len(after) == ledger_row(engine, HANDBOOK)["chunk_count"]
    changed = {sha for _, sha in after} - {sha for _, sha in before}
    assert len(changed) == report.embedded
    hits = Searcher(engine, pipeline.settings, pipeline.embedder).search(
        "anti-fouling copper mesh turned green", mode="lexical", k=1
    )
    assert hits[0].doc_id == HANDBOOK


def test_deleted_file_leaves_the_index(pipeline: Pipeline, corpus: Path, engine: Engine) -> None:
    searcher = Searcher(engine, pipeline.settings, pipeline.embedder)
    pipeline.sync(FileSource(corpus), collection="samples")
    assert searcher.search("36 months from the date of shipment", k=1)[0].doc_id == (
        "support/warranty.txt"
    )

    (corpus / "support" / "warranty.txt").unlink()
    report = pipeline.sync(FileSource(corpus), collection="samples")

    assert (report.deleted, report.unchanged) == (1, 19)
    hits = searcher.search("36 months from the date of shipment", k=50)
    assert "support/warranty.txt" not in {hit.doc_id for hit in hits}
    row = ledger_row(engine, "support/warranty.txt")
    assert (row["status"], row["chunk_count"]) == ("deleted", 0)
    assert chunk_rows(engine, "support/warranty.txt") == []


def test_file_restored_after_deletion_is_added_again(pipeline: Pipeline, corpus: Path) -> None:
    warranty = corpus / "support" / "warranty.txt"
    content = warranty.read_bytes()
    pipeline.sync(FileSource(corpus), collection="samples")
    warranty.unlink()
    pipeline.sync(FileSource(corpus), collection="samples")
    warranty.write_bytes(content)

    report = pipeline.sync(FileSource(corpus), collection="samples")

    assert (report.added, report.unchanged, report.embedded) == (1, 19, 0)


def test_collections_are_separate_ledgers(pipeline: Pipeline, corpus: Path, engine: Engine) -> None:
    pipeline.sync(FileSource(corpus / "support"), collection="support")
    report = pipeline.sync(FileSource(corpus / "guides"), collection="guides")

    assert report.deleted == 0
    searcher = Searcher(engine, pipeline.settings, pipeline.embedder)
    hits = searcher.search("warranty", k=20, search_filter=Filter(collection="guides"))
    assert hits
    assert {hit.collection for hit in hits} == {"guides"}


def test_single_file_source(pipeline: Pipeline, corpus: Path) -> None:
    report = pipeline.sync(FileSource(corpus / "support" / "faq.md"), collection="one")
    assert (report.added, report.failed) == (1, 0)


def test_include_and_exclude_globs(pipeline: Pipeline, corpus: Path) -> None:
    source = FileSource(corpus, include=("*.md", "*.txt"), exclude=("release-notes/*",))
    names = sorted(item.doc_id for item in source.list())

    assert names
    assert all(name.endswith((".md", ".txt")) for name in names)
    assert not any(name.startswith("release-notes/") for name in names)
    report = pipeline.sync(source, collection="subset")
    assert report.added == len(names)


def test_missing_path_fails_the_run_without_deleting(
    pipeline: Pipeline, corpus: Path, engine: Engine
) -> None:
    pipeline.sync(FileSource(corpus), collection="samples")
    moved = corpus.rename(corpus.with_name("moved"))

    with pytest.raises(SourceUnavailable, match="does not exist"):
        pipeline.sync(FileSource(corpus), collection="samples")

    assert moved.exists()
    with engine.connect() as conn:
        active = conn.execute(
            sa.text("SELECT count(*) FROM documents WHERE status = 'active'")
        ).scalar_one()
        last_run = conn.execute(
            sa.text("SELECT status, errors FROM sync_runs ORDER BY id DESC LIMIT 1")
        ).one()
    assert active == 20
    assert last_run.status == "failed"
    assert "does not exist" in last_run.errors[0]["reason"]


def test_a_source_never_syncs_twice_at_once(
    pipeline: Pipeline, corpus: Path, engine: Engine
) -> None:
    source = FileSource(corpus)
    key = f"sync:{pipeline.settings.tenant}:samples:{source.name}"
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": key})
        with pytest.raises(SyncInProgress, match="another sync"):
            pipeline.sync(source, collection="samples")
        holder.execute(sa.text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": key})
    assert pipeline.sync(source, collection="samples").added == 20


def test_sync_runs_are_recorded(pipeline: Pipeline, corpus: Path, engine: Engine) -> None:
    report = pipeline.sync(FileSource(corpus), collection="samples")

    with engine.connect() as conn:
        run = (
            conn.execute(
                sa.text("SELECT * FROM sync_runs WHERE id = :id"), {"id": report.run_ids[0]}
            )
            .mappings()
            .one()
        )
    assert run["status"] == "succeeded"
    assert (run["added"], run["chunks"], run["embedded"]) == (20, report.chunks, report.embedded)
    assert run["finished_at"] >= run["started_at"]


def test_a_document_past_the_parse_budget_fails_and_the_run_goes_on(
    clean_db: Engine, embedder: Embedder, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "huge.html").write_text("<html><body>" + "<p>x</p>" * 300_000 + "</body></html>")
    (folder / "note.txt").write_text("The wiper is replaced every six months.")
    budget = settings.model_copy(update={"parse_time_limit": 0.3})
    report = Pipeline(clean_db, embedder, budget).sync(FileSource(folder), collection="h")
    assert (report.added, report.failed) == (1, 1)
    [failure] = report.failures
    assert failure.doc_id == "huge.html"
    assert "parsing took longer than 0.3 s" in failure.reason


def test_a_pdf_with_one_line_per_page_keeps_every_line(pipeline: Pipeline, tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for n in range(1, 51):
        pdf.add_page()
        pdf.cell(0, 6, f"Reading {n} was logged at the dock.")
    folder = tmp_path / "pdf"
    folder.mkdir()
    (folder / "log.pdf").write_bytes(bytes(pdf.output()))
    report = pipeline.sync(FileSource(folder), collection="pdf")
    assert (report.added, report.failed) == (1, 0)
    assert report.chunks >= 1
    hits = Searcher(pipeline.engine, pipeline.settings, pipeline.embedder).search(
        "Reading 37 was logged", mode="lexical", search_filter=Filter(collection="pdf")
    )
    assert any("Reading 37 was logged" in hit.text for hit in hits)
