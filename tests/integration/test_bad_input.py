"""Bad files fail alone, with a reason in the ledger; the rest of the run goes on."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.embedding.base import Embedder
from ragline.ingest.connectors.files import FileSource
from ragline.ingest.pipeline import Pipeline


def failures(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT doc_id, last_error FROM documents WHERE status = 'failed'")
        ).all()
    return dict(rows)


def test_corrupt_empty_and_binary_files_fail_with_reasons(
    pipeline: Pipeline, corpus: Path, engine: Engine
) -> None:
    rng = random.Random(7)
    bad = corpus / "bad"
    bad.mkdir()
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + rng.randbytes(4096))
    (bad / "truncated.pdf").write_bytes(
        (corpus / "support/troubleshooting-guide.pdf").read_bytes()[:700]
    )
    (bad / "empty.md").write_bytes(b"")
    (bad / "blank.txt").write_text("   \n\n\t\n")
    (bad / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(2048))
    (bad / "page.html").write_text(
        "<html><head><script>var a = 1;</script></head><body><nav>Home</nav></body></html>"
    )

    report = pipeline.sync(FileSource(corpus), collection="samples")

    assert (report.added, report.failed) == (20, 6)
    reasons = failures(engine)
    assert set(reasons) == {
        "bad/corrupt.pdf",
        "bad/truncated.pdf",
        "bad/empty.md",
        "bad/blank.txt",
        "bad/image.txt",
        "bad/page.html",
    }
    assert "PDF" in reasons["bad/corrupt.pdf"]
    assert "PDF" in reasons["bad/truncated.pdf"] or "text" in reasons["bad/truncated.pdf"]
    assert reasons["bad/empty.md"] == "the file is empty (0 bytes)"
    assert "no text" in reasons["bad/blank.txt"]
    assert "binary content" in reasons["bad/image.txt"]
    assert "no text" in reasons["bad/page.html"]
    assert {f.doc_id: f.reason for f in report.failures} == reasons

    # Failed items are retried on the next run and stay failed; nothing else moves.
    again = pipeline.sync(FileSource(corpus), collection="samples")
    assert (again.unchanged, again.failed, again.embedded) == (20, 6, 0)


def test_failed_update_keeps_the_last_good_version(
    pipeline: Pipeline, corpus: Path, engine: Engine
) -> None:
    pipeline.sync(FileSource(corpus), collection="samples")
    (corpus / "support/faq.md").write_bytes(b"\x00\x01\x02 broken by a bad upload")

    report = pipeline.sync(FileSource(corpus), collection="samples")

    assert report.failed == 1
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT d.status, d.last_error, count(c.id) AS chunks FROM documents d "
                "LEFT JOIN chunks c ON c.document_id = d.id WHERE d.doc_id = 'support/faq.md' "
                "GROUP BY d.status, d.last_error"
            )
        ).one()
    assert row.status == "failed"
    assert "binary" in row.last_error
    assert row.chunks > 0


def test_file_over_the_size_limit_fails_without_being_read(
    clean_db: Engine, embedder: Embedder, settings: Settings, tmp_path: Path
) -> None:
    small = Pipeline(clean_db, embedder, settings.model_copy(update={"max_file_bytes": 1000}))
    (tmp_path / "big.txt").write_text("word " * 1000)
    (tmp_path / "small.txt").write_text("A short note about the anti-fouling wiper.")

    report = small.sync(FileSource(tmp_path), collection="limits")

    assert (report.added, report.failed) == (1, 1)
    assert "over the limit" in report.failures[0].reason
    assert "RAGLINE_MAX_FILE_BYTES" in report.failures[0].reason


@pytest.mark.slow
def test_a_50_mb_text_file_is_indexed_in_bounded_memory(tmp_path: Path, clean_db: Engine) -> None:
    """The big file repeats 300 distinct paragraphs, each between half and all of a
    chunk's budget, so every chunk is one of them and the embedding cache keeps the
    model's work small. What is tested is that reading, chunking and writing stream
    instead of holding the document's chunks and vectors in memory at once."""
    rng = random.Random(11)
    words = [
        "station",
        "sonde",
        "probe",
        "cable",
        "logger",
        "battery",
        "solar",
        "wiper",
        "mesh",
        "cap",
        "pressure",
        "oxygen",
        "conductivity",
        "turbidity",
        "depth",
        "modem",
        "antenna",
        "bracket",
        "firmware",
        "alarm",
    ]
    paragraphs = [
        " ".join(rng.choice(words) for _ in range(rng.randint(90, 110))).capitalize() + "."
        for _ in range(300)
    ]
    folder = tmp_path / "big"
    folder.mkdir()
    target = 50 * 1024 * 1024
    with (folder / "big.txt").open("w") as f:
        written = 0
        while written < target:
            paragraph = rng.choice(paragraphs) + "\n\n"
            f.write(paragraph)
            written += len(paragraph)
    (folder / "note.md").write_text("# Note\n\nThe wiper blade is replaced every six months.\n")
    size = (folder / "big.txt").stat().st_size

    script = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from ragline.config import get_settings\n"
        "from ragline.ingest.pipeline import Pipeline\n"
        "from ragline.ingest.connectors.files import FileSource\n"
        "report = Pipeline.from_settings(get_settings()).sync("
        "FileSource(Path(sys.argv[1])), collection='big')\n"
        "print(json.dumps({**report.as_dict(), "
        "'max_rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert size >= target
    assert (result["added"], result["failed"]) == (2, 0), result["failures"]
    assert result["chunks"] > size // 2000
    assert result["embedded"] <= 301
    # The model and its libraries take about 1 GiB; 50 MB of text must not add many more.
    assert result["max_rss_kb"] < 3 * 1024 * 1024
    with clean_db.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT chunk_count, status FROM documents WHERE doc_id = 'big.txt'")
        ).one()
        max_tokens = conn.execute(sa.text("SELECT max(token_count) FROM chunks")).scalar_one()
    assert stored == (result["chunks"] - 1, "active")
    assert max_tokens <= 254
