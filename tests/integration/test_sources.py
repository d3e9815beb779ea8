"""Configured sources end to end: the API and CLI that manage them, run reports and
their webhooks, schedules (the embedded scheduler and Celery Beat), the sync lock."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ragline.cli import app
from ragline.config import Settings
from ragline.errors import Unsupported
from ragline.jobs.dispatch import PollingDispatcher
from ragline.jobs.store import list_jobs
from ragline.sources.schedule import enqueue_due
from ragline.sources.service import enqueue_sync
from tests.integration.service import (
    client_for,
    free_port,
    serve_in_thread,
    wait_for,
)
from tests.integration.sources_util import add_source, allow, reload, run_job
from tests.integration.webhook_receiver import webhook_receiver

runner = CliRunner()

NOTES = {
    "probes.md": "# Probes\n\nCalibrate the dissolved oxygen probe in saturated air.\n",
    "wipers.md": "# Wipers\n\nReplace the turbidity wiper every six months.\n",
    "cells.md": "# Cells\n\nStore conductivity cells wet between deployments.\n",
}


@pytest.fixture
def folder(tmp_path: Path, engine: Engine) -> Path:
    """Notes in a folder the operator lets the default tenant's files sources read."""
    for name, text in NOTES.items():
        (tmp_path / name).write_text(text)
    allow(engine, folders=(str(tmp_path),))
    return tmp_path


def runs_of(engine: Engine, source_id: Any) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT id, status, trigger, mode, added, deleted, embedded "
                    "FROM sync_runs WHERE source_id = :id ORDER BY id"
                ),
                {"id": source_id},
            )
        )


# -- run reports and webhooks -------------------------------------------------------------


@pytest.mark.parametrize(("env", "posted"), [("staging", True), ("development", False)])
def test_each_run_posts_one_summary_in_the_configured_environments_only(
    settings: Settings, clean_db: Engine, folder: Path, env: str, posted: bool
) -> None:
    with webhook_receiver() as receiver:
        configured = settings.model_copy(
            update={
                "env": env,
                "notify_environments": ["staging", "production"],
                "notify_slack_url": f"{receiver.url}/slack",
                "notify_webhook_url": f"{receiver.url}/hook",
            }
        )
        record = add_source(
            clean_db, name="notes", kind="files", collection="notes", config={"path": str(folder)}
        )
        (folder / "broken.pdf").write_bytes(b"%PDF-1.4 torn")
        for _ in range(2):
            job = enqueue_sync(clean_db, PollingDispatcher(), record, full=True, trigger="manual")
            assert run_job(configured, job).status == "succeeded"

    if not posted:
        assert receiver.posts == []
        return
    slack = receiver.bodies("/slack")
    hooks = receiver.bodies("/hook")
    assert len(slack) == len(hooks) == 2
    first = hooks[0]["run"]
    assert hooks[0]["event"] == "sync_run.finished"
    assert (first["added"], first["failed"], first["source_name"]) == (3, 1, "notes")
    assert first["errors"][0]["doc_id"] == "broken.pdf"
    assert hooks[1]["run"]["unchanged"] == 3
    assert "3 added" in slack[0]["text"]
    assert "notes" in slack[0]["text"]
    assert "broken.pdf" in slack[0]["blocks"][0]["text"]["text"]


def test_a_webhook_that_fails_is_retried_and_one_that_is_down_never_fails_the_run(
    settings: Settings, clean_db: Engine, folder: Path
) -> None:
    record = add_source(
        clean_db, name="notes", kind="files", collection="notes", config={"path": str(folder)}
    )
    with webhook_receiver() as receiver:
        receiver.fail_first = 2
        flaky = settings.model_copy(
            update={"env": "production", "notify_webhook_url": f"{receiver.url}/hook"}
        )
        job = enqueue_sync(clean_db, PollingDispatcher(), record, full=True, trigger="manual")
        assert run_job(flaky, job).status == "succeeded"
        assert len(receiver.bodies("/hook")) == 1

    down = settings.model_copy(
        update={
            "env": "production",
            "notify_slack_url": f"http://127.0.0.1:{free_port()}/slack",
            "notify_attempts": 2,
        }
    )
    (folder / "more.md").write_text("# More\n\nA fourth note about pressure transducers.\n")
    job = enqueue_sync(clean_db, PollingDispatcher(), record, full=True, trigger="manual")
    done = run_job(down, job)
    assert done.status == "succeeded"
    assert done.result is not None
    assert done.result["added"] == 1


# -- schedules, the lock ----------------------------------------------------------------------


def test_each_occurrence_is_queued_once_and_a_missed_schedule_runs_once(
    settings: Settings, clean_db: Engine, folder: Path
) -> None:
    record = add_source(
        clean_db,
        name="notes",
        kind="files",
        collection="notes",
        config={"path": str(folder)},
        schedule="*/5 * * * *",
        full_schedule="0 3 * * *",
    )
    due = reload(clean_db, record).next_run_at
    assert due is not None
    assert due.minute % 5 == 0
    # The scheduler was down for a day: one sync, not 288; it is the full one.
    late = due + dt.timedelta(days=1)
    first = enqueue_due(clean_db, PollingDispatcher().dispatch, settings, now=late)
    second = enqueue_due(clean_db, PollingDispatcher().dispatch, settings, now=late)
    assert len(first) == 1
    assert second == []
    assert first[0].payload["full"] is True
    after = reload(clean_db, record)
    assert after.next_run_at is not None
    assert after.next_run_at > late
    # A source meant for production does not run here (development).
    add_source(
        clean_db,
        name="prod-only",
        kind="files",
        collection="notes",
        config={"path": str(folder)},
        schedule="*/5 * * * *",
        environments=("production",),
    )
    assert enqueue_due(
        clean_db, PollingDispatcher().dispatch, settings, now=late + dt.timedelta(days=1)
    )[0].payload["source_id"] == str(record.id)


def test_a_sync_waiting_to_start_is_not_queued_twice_and_two_syncs_never_overlap(
    settings: Settings, clean_db: Engine, folder: Path
) -> None:
    record = add_source(
        clean_db, name="notes", kind="files", collection="notes", config={"path": str(folder)}
    )
    one = enqueue_sync(clean_db, PollingDispatcher(), record, full=False, trigger="manual")
    two = enqueue_sync(clean_db, PollingDispatcher(), record, full=False, trigger="schedule")
    assert one.id == two.id
    full = enqueue_sync(clean_db, PollingDispatcher(), record, full=True, trigger="manual")
    assert full.id != one.id
    # A burst of event notifications makes one sync of all their records.
    first = enqueue_sync(
        clean_db, PollingDispatcher(), record, full=False, trigger="event", events=[{"key": "a"}]
    )
    second = enqueue_sync(
        clean_db, PollingDispatcher(), record, full=False, trigger="event", events=[{"key": "b"}]
    )
    assert first.id == second.id
    assert first.id not in (one.id, full.id)
    assert second.payload["events"] == [{"key": "a"}, {"key": "b"}]

    # While one sync holds the source's lock, another attempt is put back to retry.
    from ragline.db.locks import session_lock
    from ragline.handlers import JOB_KINDS
    from ragline.ingest.ledger import source_lock_key
    from ragline.jobs.executor import JobExecutor

    key = source_lock_key(record.tenant, record.collection, record.ledger_name)
    with session_lock(clean_db, key) as held:
        assert held
        executor = JobExecutor(settings, clean_db, kinds=JOB_KINDS)
        assert executor.execute_id(one.id, worker="test") is not None
    assert run_job(settings, one).status == "succeeded"
    assert len(runs_of(clean_db, record.id)) == 1


# -- the CLI --------------------------------------------------------------------------------


def cli(*args: str, ok: bool = True) -> str:
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
    return result.output


def test_sources_and_runs_from_the_command_line(clean_db: Engine, folder: Path) -> None:
    allowed = json.loads(cli("tenant", "allow", "default", "--folder", str(folder), "--json"))
    assert str(folder) in allowed["allowance"]["folders"]
    added = json.loads(
        cli(
            "sources",
            "add",
            "notes",
            "--kind",
            "files",
            "--collection",
            "notes",
            "--config",
            json.dumps({"path": str(folder)}),
            "--schedule",
            "0 * * * *",
            "--json",
        )
    )
    assert added["schedule"] == "0 * * * *"
    refused = cli(
        "sources",
        "add",
        "leaky",
        "--kind",
        "confluence",
        "--config",
        '{"base_url": "https://wiki", "space": "OPS", "token": "abc"}',
        ok=False,
    )
    assert "token_env" in refused

    job = json.loads(cli("sync", "notes", "--full", "--json"))
    assert job["status"] == "succeeded"
    assert job["result"]["added"] == 3
    (folder / "cells.md").unlink()
    cli("sync", "notes", "--full")

    runs = json.loads(cli("runs", "--source", "notes", "--json"))
    assert [run["deleted"] for run in runs] == [1, 0]
    one = json.loads(cli("runs", str(runs[1]["id"]), "--json"))
    assert one["added"] == 3

    listed = json.loads(cli("sources", "list", "--json"))
    assert listed[0]["name"] == "notes"
    assert listed[0]["documents"] == 2
    assert listed[0]["seconds_since_success"] is not None
    status = json.loads(cli("status", "--json"))
    assert status["sources"][0]["failed_items"] == 0

    assert "no source 'nope'" in cli("sync", "nope", ok=False)
    removed = json.loads(cli("sources", "remove", "notes", "--json"))
    assert removed["documents_removed"] == 2


# -- the API (its server runs jobs and schedules, so these tests come last) ----


@pytest.fixture(scope="module")
def api(settings: Settings, engine: Engine) -> Iterator[str]:
    fast = settings.model_copy(update={"rate_limit_burst": 10_000, "scheduler_interval": 0.5})
    with serve_in_thread(fast) as url:
        yield url


def test_sources_are_managed_synced_and_reported_through_the_api(
    api: str, clean_db: Engine, folder: Path
) -> None:
    admin = client_for(api, clean_db, "acme", "admin")
    reader = client_for(api, clean_db, "acme", "reader")
    stranger = client_for(api, clean_db, "globex", "admin")
    body = {
        "name": "notes",
        "kind": "files",
        "collection": "notes",
        "config": {"path": str(folder)},
    }

    assert reader.post("/v1/sources", json=body).status_code == 403
    leaky = {
        **body,
        "name": "leaky",
        "kind": "sql",
        "config": {
            "url": "postgresql://u:pw@db/x",
            "table": "t",
            "text_columns": ["b"],
            "updated_column": "u",
        },
    }
    refused = admin.post("/v1/sources", json=leaky)
    assert refused.status_code == 422
    assert "url_env" in refused.json()["detail"]
    # A files source reads the service's disk: the operator's to add, not the admin's.
    assert admin.post("/v1/sources", json=body).status_code == 403
    operator = client_for(api, clean_db, "acme", "operator")
    cli("tenant", "allow", "acme", "--folder", str(folder))
    bad_cron = operator.post("/v1/sources", json={**body, "schedule": "every day"})
    assert bad_cron.status_code == 422
    nul = operator.post("/v1/sources", json={**body, "config": {"path": "/tmp/\u0000"}})
    assert nul.status_code == 422

    created = operator.post("/v1/sources", json=body)
    assert created.status_code == 201, created.text
    source = created.json()
    assert operator.post("/v1/sources", json=body).status_code == 409
    assert [s["name"] for s in admin.get("/v1/sources").json()["sources"]] == ["notes"]
    # Every operation on a source's configuration is an admin's; reading runs is anyone's.
    writer = client_for(api, clean_db, "acme", "writer")
    for refused_to_writer in (
        writer.get("/v1/sources"),
        writer.get("/v1/sources/notes"),
        writer.post("/v1/sources/notes/sync"),
        writer.delete("/v1/sources/notes"),
    ):
        assert refused_to_writer.status_code == 403, refused_to_writer.request.url
    assert reader.get("/v1/runs").status_code == 200
    assert admin.get("/v1/sources/notes").json()["id"] == source["id"]
    assert stranger.get(f"/v1/sources/{source['id']}").status_code == 404
    assert stranger.post(f"/v1/sources/{source['id']}/sync").status_code == 404
    assert stranger.get("/v1/sources").json()["sources"] == []

    queued = admin.post(f"/v1/sources/{source['id']}/sync", json={"full": True})
    assert queued.status_code == 202
    job = admin.wait_job(queued.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["added"] == 3
    assert admin.search("turbidity wiper", filters={"collection": "notes"})

    runs = reader.get("/v1/runs", params={"source": "notes"}).json()["runs"]
    assert len(runs) == 1
    assert (runs[0]["added"], runs[0]["trigger"], runs[0]["mode"]) == (3, "manual", "full")
    assert runs[0]["job_id"] == job["id"]
    assert reader.get(f"/v1/runs/{runs[0]['id']}").json()["source_name"] == "notes"
    assert stranger.get(f"/v1/runs/{runs[0]['id']}").status_code == 404
    assert stranger.get("/v1/runs").json()["runs"] == []

    metrics = admin.get("/metrics").text
    assert f'ragline_source_failed_items{{kind="files",source_id="{source["id"]}"}} 0.0' in metrics
    assert (
        f'ragline_source_seconds_since_success{{kind="files",source_id="{source["id"]}"}}'
        in metrics
    )

    assert admin.delete("/v1/sources/notes").status_code == 204
    assert admin.get("/v1/sources/notes").status_code == 404
    assert admin.search("turbidity wiper", filters={"collection": "notes"}) == []


def test_the_embedded_scheduler_runs_due_sources_and_sees_edits_without_a_restart(
    api: str, clean_db: Engine, folder: Path
) -> None:
    operator = client_for(api, clean_db, "acme", "operator")
    cli("tenant", "allow", "acme", "--folder", str(folder))
    created = operator.post(
        "/v1/sources",
        json={
            "name": "notes",
            "kind": "files",
            "collection": "notes",
            "config": {"path": str(folder)},
            "schedule": "* * * * * */2",
        },
    )
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    wait_for(lambda: len(runs_of(clean_db, source_id)) >= 2, timeout=30, what="two scheduled runs")
    runs = runs_of(clean_db, source_id)
    assert {run.trigger for run in runs} == {"schedule"}
    assert runs[0].added == 3

    # Disabling it in the database stops it without touching the server.
    with clean_db.begin() as conn:
        conn.execute(
            sa.text("UPDATE sources SET enabled = false WHERE id = :id"), {"id": source_id}
        )

    def drained() -> bool:
        with clean_db.connect() as conn:
            busy = conn.execute(
                sa.text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
            ).scalar_one()
        return busy == 0

    wait_for(drained, timeout=30, what="the last scheduled sync to end")
    settled = len(runs_of(clean_db, source_id))
    time.sleep(3)
    assert len(runs_of(clean_db, source_id)) == settled


def test_a_stream_source_is_not_synced_and_says_so_at_once(
    clean_db: Engine, settings: Settings
) -> None:
    """A stream's changes are consumed, never listed: `ragline sync` refuses at once,
    with the command that works, and queues nothing to retry."""
    record = add_source(
        clean_db,
        name="cdc",
        kind="stream",
        collection="posts",
        config={
            "transport": "redis",
            "url": "redis://127.0.0.1:1/0",
            "stream": "cdc",
            "group": "ragline",
            "categories": {"posts": {"title_fields": ["title"], "text_fields": ["body"]}},
        },
    )
    started = time.monotonic()
    result = runner.invoke(app, ["sync", record.name])
    assert time.monotonic() - started < 5
    assert result.exit_code == 78, result.output  # EX_CONFIG: retrying will not help
    assert "ragline consume cdc" in result.output
    with clean_db.connect() as conn:
        assert list_jobs(conn) == []
    with pytest.raises(Unsupported, match="consumed, not synced"):
        enqueue_sync(clean_db, PollingDispatcher(), record, full=True, trigger="manual")
