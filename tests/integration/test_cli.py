"""The command line, end to end, against the embedded database."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ragline.cli import app
from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.db.migrate import check_embedding_model, head_revision
from ragline.errors import DatabaseError, EmbeddingModelMismatch
from tests.integration.service import free_port, start_process, wait_for

runner = CliRunner()

REPORT_KEYS = {
    "added",
    "updated",
    "unchanged",
    "deleted",
    "failed",
    "chunks",
    "embedded",
    "seconds",
}
HIT_KEYS = {"doc_id", "chunk_id", "score", "title", "section", "text", "source", "collection"}


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_ingest_search_status_json(cold_cache: Engine, corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.5 not really")

    report = json.loads(run("ingest", str(corpus), "--collection", "manuals", "--json"))
    assert set(report) >= REPORT_KEYS
    assert (report["added"], report["failed"], report["unchanged"]) == (20, 1, 0)
    assert report["embedded"] == report["chunks"] > 0
    assert isinstance(report["seconds"], float)

    again = json.loads(run("ingest", str(corpus), "--collection", "manuals", "--json"))
    assert (again["unchanged"], again["embedded"], again["failed"]) == (20, 0, 1)

    hits = json.loads(run("search", "E-4471", "--mode", "lexical", "--k", "3", "--json"))
    assert len(hits) == 3
    assert set(hits[0]) == HIT_KEYS
    assert hits[0]["doc_id"] == "support/troubleshooting-guide.pdf"
    assert hits[0]["collection"] == "manuals"

    filtered = json.loads(
        run(
            "search", "battery", "--filter", "type=html", "--filter", "collection=manuals", "--json"
        )
    )
    assert filtered
    assert all(hit["doc_id"].endswith(".html") for hit in filtered)

    lexical = json.loads(run("search", "conductivity out of range", "--mode", "lexical", "--json"))
    weighted = json.loads(
        run("search", "conductivity out of range", "--dense-weight", "0", "--json")
    )
    assert [h["chunk_id"] for h in weighted] == [h["chunk_id"] for h in lexical]

    status = json.loads(run("status", "--json"))
    assert status["documents"] == {"active": 20, "failed": 1, "deleted": 0}
    assert status["chunks"] == report["chunks"]
    assert status["failed"][0]["doc_id"] == "broken.pdf"
    assert "PDF" in status["failed"][0]["reason"]
    assert [run_["unchanged"] for run_ in status["runs"]] == [20, 0]
    assert status["embedding_model"] == "all-MiniLM-L6-v2"


def test_human_output(clean_db: Engine, corpus: Path) -> None:
    summary = run("ingest", str(corpus / "support"))
    assert "added 7" in summary
    assert "failed 0" in summary

    found = run("search", "how long is the warranty", "--k", "2")
    assert "warranty.txt" in found

    status = run("status")
    assert "7 documents indexed" in status


def test_errors_say_what_to_do(clean_db: Engine, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope")])
    assert missing.exit_code != 0
    assert "no such file or folder" in missing.output

    bad_filter = runner.invoke(app, ["search", "x", "--filter", "date=yesterday"])
    assert bad_filter.exit_code == 64  # EX_USAGE: the command must change
    assert "YYYY-MM-DD" in bad_filter.output

    no_weight = runner.invoke(app, ["search", "x", "--dense-weight", "0", "--lexical-weight", "0"])
    assert no_weight.exit_code != 0
    assert "cannot both be 0" in no_weight.output

    bad_mode = runner.invoke(app, ["search", "x", "--mode", "fuzzy"])
    assert bad_mode.exit_code != 0
    assert "dense, lexical or hybrid" in bad_mode.output


def test_db_upgrade_reports_the_revision(engine: Engine) -> None:
    assert f"schema at revision {head_revision()} (PostgreSQL 16" in run("db", "upgrade")


def test_keys_are_created_listed_and_revoked(engine: Engine) -> None:
    tenant, other = f"keys-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    made = json.loads(run("keys", "create", "--tenant", tenant, "--role", "admin", "--json"))
    run("keys", "create", "--tenant", other, "--name", "ci")
    operator = json.loads(run("keys", "create", "--tenant", tenant, "--role", "operator", "--json"))
    assert operator["role"] == "operator"

    listed = json.loads(run("keys", "list", "--json"))
    assert {made["id"], operator["id"]} <= {key["id"] for key in listed}
    assert other in {key["tenant"] for key in listed}
    mine = json.loads(run("keys", "list", "--tenant", tenant, "--json"))
    assert [(key["id"], key["role"], key["revoked"]) for key in mine] == [
        (made["id"], "admin", False),
        (operator["id"], "operator", False),
    ]
    assert all(made["key"] not in json.dumps(key) for key in listed)
    table = run("keys", "list", "--tenant", tenant)
    assert "admin" in table
    assert made["key"] not in table

    run("keys", "revoke", str(made["id"]))
    assert json.loads(run("keys", "list", "--tenant", tenant, "--json"))[0]["revoked"] is True
    missing = runner.invoke(app, ["keys", "revoke", "999999999"])
    assert missing.exit_code == 66
    assert "ragline keys list" in missing.output
    assert (
        "--role must be one of"
        in runner.invoke(app, ["keys", "create", "--tenant", tenant, "--role", "root"]).output
    )


def test_another_embedding_model_is_refused(engine: Engine) -> None:
    with engine.connect() as conn:
        check_embedding_model(conn, "all-MiniLM-L6-v2", 384)
        with pytest.raises(
            EmbeddingModelMismatch, match=r"built with the embedding model 'all-MiniLM-L6-v2' \(384"
        ):
            check_embedding_model(conn, "bge-base-en", 768)


def test_embedding_model_is_recorded_in_the_ledger(clean_db: Engine, corpus: Path) -> None:
    run("ingest", str(corpus / "guides"))
    with clean_db.connect() as conn:
        models = conn.execute(sa.text("SELECT DISTINCT embedding_model FROM documents")).scalars()
        assert list(models) == ["all-MiniLM-L6-v2"]


def _local_postgres(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            has_vector = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError:
        return None
    return None if has_vector else url


def test_server_without_pgvector_gets_a_clear_error(tmp_path: Path, postgres_url: str) -> None:
    url = _local_postgres(postgres_url)
    if url is None:
        pytest.skip(f"no PostgreSQL without pgvector at {postgres_url} to test against")
    with pytest.raises(DatabaseError, match="no 'vector' extension"):
        get_engine(Settings(home=tmp_path, database_url=url))


def test_unreachable_server_gets_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://nobody@127.0.0.1:9/none")
    with pytest.raises(DatabaseError, match="cannot connect to PostgreSQL"):
        get_engine(settings)


def test_a_stopped_server_stops_its_embedded_database(tmp_path: Path) -> None:
    """SIGTERM (what a process manager sends) shuts `ragline serve` down cleanly, and the
    embedded PostgreSQL it started stops with it rather than running on."""
    home = tmp_path / "home"
    port = free_port()
    server = start_process(
        ["serve", "--port", str(port)],
        {"RAGLINE_HOME": str(home), "RAGLINE_AUTH_REQUIRED": "false"},
        log=tmp_path / "serve.log",
    )
    try:
        wait_for(
            lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=120, what="the server"
        )
        postmaster = home / "pgdata" / "postmaster.pid"
        assert postmaster.exists()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, 128 + signal.SIGTERM)
        wait_for(lambda: not postmaster.exists(), timeout=30, what="PostgreSQL to stop")
    finally:
        if server.poll() is None:
            server.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
