"""The SQL table source against the machine's own PostgreSQL 15 and MariaDB servers:
watermark and look-back, unchanged rows, the row filter, the id listing, profiles."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.errors import ConfigurationError
from ragline.jobs.dispatch import PollingDispatcher
from ragline.sources.schedule import enqueue_due
from ragline.sources.store import SourceRecord
from tests import services
from tests.integration.sources_util import add_source, allow, reload, run_job, sync_now

# Each server by its fixture (tests/services.py).
DATABASES = {"postgresql": "postgres_url", "mariadb": "mariadb_url"}
UNSET_ENV = "TEST_UNSET_NEWS_DB_URL"


@pytest.fixture(autouse=True)
def _allowed(clean_db: Engine) -> None:
    """The operator lets the tests' tenant reach the database servers of this machine."""
    allow(clean_db, env=(UNSET_ENV,))


T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)

BODIES = {
    1: "Calibrate the dissolved oxygen probe in water-saturated air before every survey.",
    2: "The turbidity sensor wiper must be replaced every six months of deployment.",
    3: "Store conductivity cells wet; a dried cell drifts for hours after redeployment.",
    4: "Firmware 4.2 adds burst sampling for the pressure transducer at 16 Hz.",
    5: "Lithium cells in the logger last two years at a fifteen-minute interval.",
}


@pytest.fixture(params=sorted(DATABASES))
def table(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, str, str]]:
    """An ``articles`` table of its own in a real database server; (engine, url, name)."""
    url = services.sqlalchemy_url(request.getfixturevalue(DATABASES[request.param]))
    engine = sa.create_engine(url)
    name = f"articles_{uuid.uuid4().hex[:8]}"
    when = "timestamptz" if request.param == "postgresql" else "datetime(6)"
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"""
                    CREATE TABLE {name} (
                        id integer PRIMARY KEY, kind varchar(20) NOT NULL,
                        title varchar(200) NOT NULL, subtitle varchar(200),
                        body text, author varchar(100), published boolean NOT NULL,
                        updated_at {when} NOT NULL
                    )
                    """
                )
            )
    except sa.exc.OperationalError as e:
        pytest.fail(f"the {request.param} server of this machine is not running: {e}")
    yield engine, url, name
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {name}"))
    engine.dispose()


def put(
    engine: Engine, name: str, row_id: int, body: str, updated: dt.datetime, **fields: Any
) -> None:
    """Insert or replace one row (the way an application would write it)."""
    naive = engine.dialect.name != "postgresql"
    row = {
        "id": row_id,
        "kind": fields.get("kind", "article"),
        "title": fields.get("title", f"Field note {row_id}"),
        "subtitle": fields.get("subtitle", "Instrument care"),
        "body": body,
        "author": fields.get("author", "ops"),
        "published": fields.get("published", True),
        "updated_at": updated.replace(tzinfo=None) if naive else updated,
    }
    with engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {name} WHERE id = :id"), row)
        conn.execute(
            sa.text(
                f"INSERT INTO {name} (id, kind, title, subtitle, body, author, published, "
                "updated_at) VALUES (:id, :kind, :title, :subtitle, :body, :author, :published, "
                ":updated_at)"
            ),
            row,
        )


def add(engine: Engine, url: str, name: str, **extra: Any) -> SourceRecord:
    config = {
        "url": url,
        "table": name,
        "id_column": "id",
        "title_columns": ["title", "subtitle"],
        "text_columns": ["body"],
        "updated_column": "updated_at",
        "metadata_columns": ["author"],
        "category_column": "kind",
        "where": "published",
        "lookback_seconds": 300,
        "uri_template": "https://news.example.com/a/{id}",
        **extra,
    }
    return add_source(
        engine,
        name=f"news-{name}",
        kind="sql",
        collection="news",
        config=config,
        schedule="*/5 * * * *",
        full_schedule="0 3 * * *",
        profiles={"article": {"max_tokens": 400, "overlap_tokens": 20}},
    )


def active(engine: Engine) -> dict[str, str]:
    """Indexed documents of the collection: doc id -> its chunk texts."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                SELECT d.doc_id, string_agg(c.text, ' ' ORDER BY c.ordinal) AS text
                FROM documents d JOIN chunks c ON c.document_id = d.id
                WHERE d.collection = 'news' AND d.status = 'active'
                GROUP BY d.doc_id
                """
            )
        ).all()
    return {row.doc_id: row.text for row in rows}


def scheduled_sync(settings: Settings, engine: Engine, record: SourceRecord) -> dict[str, Any]:
    """Let the scheduler find the source due, then run the job it queued."""
    due = reload(engine, record).next_run_at
    assert due is not None
    jobs = enqueue_due(engine, PollingDispatcher().dispatch, settings, now=due)
    assert [job.payload["source_id"] for job in jobs] == [str(record.id)]
    assert jobs[0].payload["full"] is False
    done = run_job(settings, jobs[0])
    assert done.status == "succeeded", done.error
    assert done.result is not None
    return done.result


def test_incremental_sync_follows_the_watermark_and_the_listing_removes_deleted_rows(
    settings: Settings, cold_cache: Engine, table: tuple[Engine, str, str]
) -> None:
    clean_db = cold_cache
    source_db, url, name = table
    for row_id, body in BODIES.items():
        put(source_db, name, row_id, body, T0 + dt.timedelta(minutes=row_id))
    record = add(clean_db, url, name)

    first = scheduled_sync(settings, clean_db, record)
    assert (first["added"], first["failed"]) == (5, 0)
    state = reload(clean_db, record).state
    assert dt.datetime.fromisoformat(state["watermark"]) == T0 + dt.timedelta(minutes=5)

    # Nothing changed: the rows in the look-back window are seen and cost nothing.
    again = scheduled_sync(settings, clean_db, record)
    assert again["unchanged"] == 5
    assert (again["added"], again["updated"], again["embedded"]) == (0, 0, 0)
    assert again["embedding_calls"] == 0

    # A new row, an edited row, and a row committed late with a timestamp older than
    # the watermark (its transaction began before the last sync) but inside the window.
    put(
        source_db,
        name,
        6,
        "Replace the desiccant pack when it turns pink.",
        T0 + dt.timedelta(minutes=9),
    )
    put(
        source_db, name, 2, BODIES[2] + " Use only the OEM wiper arm.", T0 + dt.timedelta(minutes=8)
    )
    put(source_db, name, 7, "Rinse the pH bulb with deionised water.", T0 + dt.timedelta(minutes=3))
    changed = scheduled_sync(settings, clean_db, record)
    assert (changed["added"], changed["updated"], changed["failed"]) == (2, 1, 0)
    assert changed["embedding_calls"] >= 1
    indexed = active(clean_db)
    assert set(indexed) == {"1", "2", "3", "4", "5", "6", "7"}
    assert "OEM wiper arm" in indexed["2"]

    # A change of metadata alone re-embeds nothing, and filters see it at once.
    put(source_db, name, 5, BODIES[5], T0 + dt.timedelta(minutes=9, seconds=30), author="crew")
    retagged = scheduled_sync(settings, clean_db, record)
    assert (retagged["updated"], retagged["embedded"]) == (0, 0)
    with clean_db.connect() as conn:
        author = conn.execute(
            sa.text("SELECT metadata->>'author' FROM documents WHERE doc_id = '5'")
        ).scalar_one()
    assert author == "crew"

    # A row edited out of the filter goes at once; a row deleted from the table goes
    # with the id listing of the next full sync.
    put(source_db, name, 4, BODIES[4], T0 + dt.timedelta(minutes=10), published=False)
    with source_db.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {name} WHERE id = 3"))
    unpublished = scheduled_sync(settings, clean_db, record)
    assert unpublished["deleted"] == 1
    assert set(active(clean_db)) == {"1", "2", "3", "5", "6", "7"}

    listing = sync_now(settings, clean_db, record, full=True)
    assert (listing["deleted"], listing["added"], listing["updated"]) == (1, 0, 0)
    assert listing["embedded"] == 0
    assert set(active(clean_db)) == {"1", "2", "5", "6", "7"}


def test_rows_become_documents_with_title_metadata_link_and_their_category_profile(
    settings: Settings, clean_db: Engine, table: tuple[Engine, str, str]
) -> None:
    source_db, url, name = table
    transcript = " ".join(
        f"In part {n} of the video we open the sonde housing and check the o-ring seat."
        for n in range(30)
    )
    put(source_db, name, 1, BODIES[1], T0)
    put(source_db, name, 2, transcript, T0, kind="video", title="Sonde teardown", subtitle="Part 1")
    put(source_db, name, 3, transcript, T0, kind="short", title="Sonde teardown", subtitle="Part 1")
    record = add_source(
        clean_db,
        name="videos",
        kind="sql",
        collection="news",
        config={
            "url": url,
            "query": f"SELECT * FROM {name}",
            "title_columns": ["title", "subtitle"],
            "text_columns": ["body"],
            "updated_column": "updated_at",
            "metadata_columns": ["author"],
            "category_column": "kind",
            "uri_template": "https://videos.example.com/watch/{id}",
        },
        profiles={"short": {"max_tokens": 40, "overlap_tokens": 5}},
    )
    report = sync_now(settings, clean_db, record)
    assert report["added"] == 3
    with clean_db.connect() as conn:
        docs = {
            row.doc_id: row
            for row in conn.execute(
                sa.text(
                    "SELECT doc_id, title, uri, metadata, chunk_count, pipeline_version "
                    "FROM documents WHERE collection = 'news'"
                )
            )
        }
        contexts = (
            conn.execute(sa.text("SELECT DISTINCT context FROM chunks WHERE collection = 'news'"))
            .scalars()
            .all()
        )
    assert docs["2"].title == "Sonde teardown — Part 1"
    assert docs["2"].uri == "https://videos.example.com/watch/2"
    assert docs["2"].metadata["author"] == "ops"
    assert docs["2"].metadata["kind"] == "video"
    # The same text chunks finer under the small profile of its category, which is
    # also part of the version the ledger records.
    assert docs["3"].chunk_count > docs["2"].chunk_count
    assert docs["3"].pipeline_version != docs["2"].pipeline_version
    assert "Sonde teardown — Part 1" in contexts


def test_a_password_in_the_configuration_is_refused_and_a_missing_variable_fails_the_run(
    settings: Settings, clean_db: Engine, table: tuple[Engine, str, str]
) -> None:
    _, url, name = table
    base = {
        "table": name,
        "text_columns": ["body"],
        "updated_column": "updated_at",
    }
    with pytest.raises(ConfigurationError, match="url_env"):
        add_source(
            clean_db,
            name="leaky",
            kind="sql",
            collection="news",
            config={"url": "postgresql://app:hunter2@db.example.com/news", **base},
        )
    with pytest.raises(ConfigurationError, match="password_env"):
        add_source(
            clean_db,
            name="leaky",
            kind="sql",
            collection="news",
            config={"url": url, "password": "hunter2", **base},
        )
    record = add_source(
        clean_db,
        name="from-env",
        kind="sql",
        collection="news",
        config={"url_env": "TEST_UNSET_NEWS_DB_URL", **base},
    )
    from ragline.sources.service import enqueue_sync

    job = enqueue_sync(clean_db, PollingDispatcher(), record, full=False, trigger="manual")
    done = run_job(settings, job)
    assert done.status == "failed"
    assert done.error is not None
    assert "TEST_UNSET_NEWS_DB_URL is not set" in done.error
