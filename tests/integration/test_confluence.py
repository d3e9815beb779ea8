"""The Confluence connector against a local server speaking Confluence's REST API: a
space indexed, edits, cosmetic re-renders and deletions synced, answers citing page
URLs, and the configured-source path through a sync job, credentials included."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.answer.service import Answerer
from ragline.config import Settings
from ragline.domain import AnswerMode
from ragline.embedding.base import Embedder
from ragline.errors import ConfigurationError, SourceUnavailable
from ragline.ingest.connectors.confluence import ConfluenceSource
from ragline.ingest.connectors.kinds import Profiles, SourceContext
from ragline.ingest.pipeline import Pipeline
from ragline.jobs.dispatch import PollingDispatcher
from ragline.jobs.store import Job
from ragline.search.hybrid import Searcher
from ragline.sources.registry import get_kind
from ragline.sources.service import enqueue_sync
from ragline.sources.store import SourceRecord, get_source, list_sources
from tests.integration.confluence_server import Page, Wiki, confluence_server
from tests.integration.service import free_port
from tests.integration.sources_util import add_source, allow, local_allowance, reload, run_job

TOKEN_ENV = "TEST_CONFLUENCE_TOKEN"
TOKEN = "pat-" + uuid.uuid4().hex
PUBLIC = "https://wiki.example.com"
COLLECTION = "wiki"
# Confluence's clock, and the zone it reads CQL dates in: not UTC, as on many sites.
ZONE = dt.timezone(dt.timedelta(hours=2))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

RUNBOOKS = (
    "<p>This space holds the <strong>runbooks</strong> of the platform team. Each runbook "
    "has an owner and is reviewed every quarter.</p>"
)
BILLING = """<div class="toc-macro client-side-toc-macro" data-headerelements="H1,H2">
<ul><li><a href="#Restartthebillingservice-Steps">Steps</a></li></ul></div>
<p>To restart the <strong>billing</strong> service, drain
the payment queue first and wait until it is empty.</p>
<h2 id="Restartthebillingservice-Steps">Steps</h2>
<span class="confluence-anchor-link" id="Restartthebillingservice-steps"></span>
<div class="confluence-information-macro confluence-information-macro-note" \
data-macro-id="6f1c2a9e-0001"><span class="aui-icon confluence-information-macro-icon"> </span>\
<div class="confluence-information-macro-body"><p>Never restart billing during&nbsp;the nightly \
invoice run.</p></div></div>
<div class="code panel pdl" style="border-width: 1px;"><div class="codeContent panelContent pdl">\
<pre class="syntaxhighlighter-pre" data-syntaxhighlighter-params="brush: bash; gutter: false">\
systemctl restart billing
  --drain-timeout 300</pre></div></div>
<table class="confluenceTable"><tbody><tr><th class="confluenceTh">Step</th>\
<th class="confluenceTh">Check</th></tr><tr><td class="confluenceTd">1</td>\
<td class="confluenceTd">The queue depth is zero</td></tr></tbody></table>"""
# The same page as Confluence renders it again: new macro and anchor ids, attributes
# in another order, the paragraphs wrapped differently, a no-break space now a space.
BILLING_RERENDERED = """
<div data-headerelements="H1,H2" class="client-side-toc-macro toc-macro" data-hasbody="false">
  <ul>
    <li><a href="#Restartthebillingservice-Steps-1">Steps</a></li>
  </ul>
</div>
<p>
  To restart the <strong>billing</strong>
  service, drain the payment queue first and wait until it
  is empty.
</p>
<h2 id="Restartthebillingservice-Steps-1">Steps</h2>
<span id="Restartthebillingservice-steps-2" class="confluence-anchor-link"></span>
<div data-macro-id="93b07d44-0002" \
class="confluence-information-macro confluence-information-macro-note">
  <span class="confluence-information-macro-icon aui-icon"></span>
  <div class="confluence-information-macro-body">
    <p>Never restart billing during the
       nightly invoice run.</p>
  </div>
</div>
<div style="border-width: 1px;" class="code panel pdl">
<div class="codeContent panelContent pdl">\
<pre data-syntaxhighlighter-params="brush: bash; gutter: false" class="syntaxhighlighter-pre">\
systemctl restart billing
  --drain-timeout 300</pre></div></div>
<table class="confluenceTable">
  <thead><tr><th class="confluenceTh">Step</th><th class="confluenceTh">Check</th></tr></thead>
  <tbody><tr><td class="confluenceTd">1</td><td class="confluenceTd">The queue depth is
      zero</td></tr></tbody>
</table>
"""
TLS = (
    "<p>To rotate the TLS certificates of the public load balancer, request new "
    "certificates from the internal certificate authority with certctl, upload them to "
    "the vault path secret/lb/tls, then reload haproxy on both load balancer nodes.</p>"
    "<p>Certificates expire after ninety days; monitoring alerts fourteen days before "
    "expiry.</p>"
)
CAFETERIA = (
    '<h2 id="Cafeteria-Menu">Menu</h2><p>Lunch is served from noon to two in the atrium; '
    "the vegetarian dish changes every Monday.</p>"
)


@pytest.fixture(autouse=True)
def _allowed(clean_db: Engine, settings: Settings) -> None:
    """The operator lets the tests' tenant reach the local wiki with its token."""
    allow(clean_db, settings.tenant, env=(TOKEN_ENV,))


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


@pytest.fixture
def wiki() -> Wiki:
    """Space ENG: a tree of runbooks and one page more; space HR, not synced."""
    wiki = Wiki(token=TOKEN, tz=ZONE, public_base=PUBLIC, max_limit=2)
    root = wiki.add_page("ENG", "Runbooks", RUNBOOKS, when=NOW - dt.timedelta(days=3))
    wiki.add_page(
        "ENG",
        "Restart the billing service",
        BILLING,
        parent=root,
        when=NOW - dt.timedelta(days=2),
    )
    wiki.add_page(
        "ENG", "Rotate TLS certificates", TLS, parent=root, when=NOW - dt.timedelta(days=1)
    )
    wiki.add_page("ENG", "Cafeteria", CAFETERIA, when=NOW - dt.timedelta(hours=1))
    wiki.add_page("HR", "Holiday policy", "<p>Twenty-five days a year.</p>", when=NOW)
    return wiki


@pytest.fixture
def site(wiki: Wiki) -> Iterator[str]:
    with confluence_server(wiki) as url:
        yield url


def page(wiki: Wiki, title: str) -> Page:
    return next(p for p in wiki.pages.values() if p.title == title)


def config(site: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": site, "space": "ENG", "token_env": TOKEN_ENV, **extra}


def build(settings: Settings, engine: Engine, values: dict[str, Any]) -> ConfluenceSource:
    """The connector, built the way a configured source's job builds it."""
    kind = get_kind("confluence")
    context = SourceContext(
        name="confluence:eng",
        source_id=uuid.uuid4(),
        tenant=settings.tenant,
        collection=COLLECTION,
        settings=settings,
        engine=engine,
        profiles=Profiles(),
        allowance=local_allowance(env=(TOKEN_ENV,)),
    )
    source = kind.build(kind.validate(values), context)
    assert isinstance(source, ConfluenceSource)
    return source


def documents(engine: Engine) -> dict[str, sa.RowMapping]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM documents")).mappings().all()
    return {row["doc_id"]: row for row in rows}


def chunks(engine: Engine, doc_id: str) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT c.id, c.section, c.text FROM chunks c JOIN documents d "
                    "ON d.id = c.document_id WHERE d.doc_id = :doc_id ORDER BY c.ordinal"
                ),
                {"doc_id": doc_id},
            )
            .mappings()
            .all()
        )


def test_first_sync_indexes_the_space(
    pipeline: Pipeline, settings: Settings, wiki: Wiki, site: str, token: str
) -> None:
    wiki.throttle = 2  # the first two requests are answered 429, Retry-After: 0
    source = build(settings, pipeline.engine, config(site))

    report = pipeline.sync(source, collection=COLLECTION, full=False, state={})

    eng = [p for p in wiki.pages.values() if p.space == "ENG"]
    assert (report.added, report.failed, report.updated) == (4, 0, 0)
    assert wiki.throttle == 0
    # Batches of two (the server's cap on limit), linked by _links.next; no date yet.
    assert len(wiki.searches) == 2
    assert all("lastmodified" not in cql for cql in wiki.searches)
    assert sorted(wiki.reads) == sorted(p.id for p in eng)
    indexed = documents(pipeline.engine)
    assert set(indexed) == {p.id for p in eng}
    billing = page(wiki, "Restart the billing service")
    row = indexed[billing.id]
    assert row["title"] == "Restart the billing service"
    assert row["uri"] == f"{PUBLIC}/display/ENG/Restart+the+billing+service"
    assert row["etag"] == "1"
    assert row["source"] == "confluence:eng"
    assert row["source_modified"] == billing.when
    assert row["metadata"] == {
        "space": "ENG",
        "page_id": billing.id,
        "version": 1,
        "ancestors": ["Runbooks"],
        "last_modified_by": "Ada Lovelace",
    }
    text = " ".join(c["text"] for c in chunks(pipeline.engine, billing.id))
    assert "drain the payment queue first" in text
    assert "systemctl restart billing" in text
    assert "The queue depth is zero" in text
    # A heading whose id looks like navigation ("Cafeteria-Menu") is kept.
    cafeteria = chunks(pipeline.engine, page(wiki, "Cafeteria").id)
    assert [c["section"] for c in cafeteria] == ["Menu"]
    assert report.state is not None
    assert dt.datetime.fromisoformat(report.state["watermark"]) == page(wiki, "Cafeteria").when


def test_editing_a_page_reindexes_only_that_page(
    pipeline: Pipeline, settings: Settings, wiki: Wiki, site: str, token: str
) -> None:
    first = pipeline.sync(
        build(settings, pipeline.engine, config(site)), collection=COLLECTION, full=False
    )
    billing = page(wiki, "Restart the billing service")
    marker = f"maintenance flag MF-{uuid.uuid4().hex[:8]}"
    wiki.edit(
        billing.id,
        BILLING + f"<p>Before restarting, set the {marker} in the admin console.</p>",
        author="Grace Hopper",
    )
    wiki.reads.clear()

    report = pipeline.sync(
        build(settings, pipeline.engine, config(site)),
        collection=COLLECTION,
        full=False,
        state=first.state,
    )

    # The search asks from the watermark less the look-back, in Confluence's zone.
    since = (page(wiki, "Cafeteria").when - dt.timedelta(seconds=300)).astimezone(ZONE)
    assert f'lastmodified >= "{since:%Y-%m-%d %H:%M}"' in wiki.searches[-1]
    # Listed: the edited page and the one modified within the look-back (not re-read).
    assert (report.updated, report.unchanged, report.added, report.failed) == (1, 1, 0, 0)
    assert wiki.reads == [billing.id]
    assert 1 <= report.embedding_calls <= 2
    assert 0 < report.embedded <= len(chunks(pipeline.engine, billing.id))
    assert any(marker in c["text"] for c in chunks(pipeline.engine, billing.id))
    row = documents(pipeline.engine)[billing.id]
    assert (row["etag"], row["metadata"]["version"]) == ("2", 2)
    assert row["metadata"]["last_modified_by"] == "Grace Hopper"
    assert report.state is not None
    assert dt.datetime.fromisoformat(report.state["watermark"]) == billing.when


def test_a_cosmetic_rerender_changes_nothing(
    pipeline: Pipeline, settings: Settings, wiki: Wiki, site: str, token: str
) -> None:
    first = pipeline.sync(
        build(settings, pipeline.engine, config(site)), collection=COLLECTION, full=False
    )
    billing = page(wiki, "Restart the billing service")
    before = chunks(pipeline.engine, billing.id)
    wiki.edit(billing.id, BILLING_RERENDERED)
    wiki.reads.clear()

    report = pipeline.sync(
        build(settings, pipeline.engine, config(site)),
        collection=COLLECTION,
        full=False,
        state=first.state,
    )

    assert wiki.reads == [billing.id]  # its version moved: read, then found the same
    assert (report.unchanged, report.updated, report.added, report.failed) == (2, 0, 0, 0)
    assert (report.embedded, report.embedding_calls) == (0, 0)
    assert chunks(pipeline.engine, billing.id) == before
    assert documents(pipeline.engine)[billing.id]["etag"] == "2"

    wiki.reads.clear()
    again = pipeline.sync(
        build(settings, pipeline.engine, config(site)),
        collection=COLLECTION,
        full=False,
        state=report.state,
    )
    # Only the re-rendered page is within the look-back now; its version is known.
    assert wiki.reads == []
    assert (again.unchanged, again.updated, again.embedded) == (1, 0, 0)


def test_a_deleted_page_disappears_after_the_full_sync(
    pipeline: Pipeline, settings: Settings, wiki: Wiki, site: str, token: str
) -> None:
    first = pipeline.sync(
        build(settings, pipeline.engine, config(site)), collection=COLLECTION, full=False
    )
    cafeteria = page(wiki, "Cafeteria")
    wiki.delete(cafeteria.id)
    wiki.reads.clear()
    searcher = Searcher(pipeline.engine, settings, pipeline.embedder)

    incremental = pipeline.sync(
        build(settings, pipeline.engine, config(site)),
        collection=COLLECTION,
        full=False,
        state=first.state,
    )
    assert incremental.deleted == 0  # a change set says nothing of pages it does not list
    full = pipeline.sync(build(settings, pipeline.engine, config(site)), collection=COLLECTION)

    assert (full.deleted, full.unchanged, full.added, full.updated) == (1, 3, 0, 0)
    assert wiki.reads == []
    assert documents(pipeline.engine)[cafeteria.id]["status"] == "deleted"
    assert chunks(pipeline.engine, cafeteria.id) == []
    hits = searcher.search("what is for lunch in the atrium cafeteria menu", k=10)
    assert hits
    assert cafeteria.id not in {hit.doc_id for hit in hits}
    assert full.state is not None
    newest = page(wiki, "Rotate TLS certificates").when
    assert dt.datetime.fromisoformat(full.state["watermark"]) == newest


def test_answers_cite_the_page_urls(
    pipeline: Pipeline,
    settings: Settings,
    embedder: Embedder,
    wiki: Wiki,
    site: str,
    token: str,
) -> None:
    pipeline.sync(build(settings, pipeline.engine, config(site)), collection=COLLECTION)
    answerer = Answerer(Searcher(pipeline.engine, settings, embedder), settings)

    answer = answerer.ask(
        "How do I rotate the TLS certificates of the load balancer?", tenant=settings.tenant
    )

    assert answer.mode is AnswerMode.EXTRACTIVE
    assert answer.citations
    assert all(c.url.startswith(f"{PUBLIC}/display/ENG/") for c in answer.citations)
    tls = next(c for c in answer.citations if "certctl" in c.text)
    assert tls.url == f"{PUBLIC}/display/ENG/Rotate+TLS+certificates"
    assert tls.title == "Rotate TLS certificates"
    assert tls.doc_id == page(wiki, "Rotate TLS certificates").id


def test_a_page_without_text_fails_alone(
    pipeline: Pipeline, settings: Settings, wiki: Wiki, site: str, token: str
) -> None:
    empty = wiki.add_page(
        "ENG", "Draft", '<p>&nbsp;</p><span class="confluence-anchor-link" id="Draft-x"></span>'
    )

    report = pipeline.sync(
        build(settings, pipeline.engine, config(site)), collection=COLLECTION, full=False
    )

    assert (report.added, report.failed) == (4, 1)
    assert report.failures[0].doc_id == empty.id
    assert "has no text" in report.failures[0].reason
    row = documents(pipeline.engine)[empty.id]
    assert row["status"] == "failed"
    assert "Draft" in row["last_error"]


def test_confluence_down_refusing_or_misconfigured_stops_the_run(
    settings: Settings, engine: Engine, wiki: Wiki, site: str, token: str
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/wiki"
    with pytest.raises(SourceUnavailable, match="cannot reach Confluence at"):
        list(build(settings, engine, config(nowhere)).list())
    with pytest.raises(SourceUnavailable, match=r"space NOPE does not exist"):
        list(build(settings, engine, config(site, space="NOPE")).list())
    with pytest.raises(ConfigurationError, match="check the source's cql"):
        build(settings, engine, config(site, cql="label ~ public")).changes({})
    labelled = build(settings, engine, config(site, cql='label = "public"'))
    assert labelled.changes({}).items == []

    # Cloud: the account's email and an API token, as basic auth.
    wiki.username = "ops@example.com"
    cloud = build(settings, engine, config(site, username="ops@example.com"))
    assert len(list(cloud.list())) == 4
    stranger = build(settings, engine, config(site, username="dev@example.com"))
    with pytest.raises(SourceUnavailable, match=r"HTTP 401.*an API token of dev@example.com"):
        list(stranger.list())
    with pytest.raises(SourceUnavailable, match=r"HTTP 401.*a valid personal access token"):
        list(build(settings, engine, config(site)).list())
    wiki.username = None

    wiki.fail_status = 500
    with pytest.raises(SourceUnavailable, match="answered HTTP 500"):
        build(settings, engine, config(site)).changes({})
    wiki.fail_status = None
    wiki.throttle = 10  # more 429s than the retries: the job retries later
    with pytest.raises(SourceUnavailable, match="answered HTTP 429"):
        list(build(settings, engine, config(site)).list())


def test_cql_dates_are_written_in_the_zone_confluence_reads_them_in(
    settings: Settings, engine: Engine, wiki: Wiki, site: str, token: str
) -> None:
    state = {"watermark": "2025-03-30T01:10:00.000+02:00"}
    build(settings, engine, config(site, lookback_seconds=600)).changes(state)
    assert 'lastmodified >= "2025-03-30 01:00"' in wiki.searches[-1]
    tokyo = build(settings, engine, config(site, timezone="Asia/Tokyo", lookback_seconds=0))
    tokyo.changes(state)
    assert 'lastmodified >= "2025-03-30 08:10"' in wiki.searches[-1]


def add_eng_wiki(engine: Engine, settings: Settings, values: dict[str, Any]) -> SourceRecord:
    return add_source(
        engine,
        tenant=settings.tenant,
        name="eng-wiki",
        kind="confluence",
        collection=COLLECTION,
        config=values,
    )


def run_sync(settings: Settings, engine: Engine, record: SourceRecord, *, full: bool) -> Job:
    """Queue a sync of ``record`` (one attempt), run it here, and return its final row."""
    job = enqueue_sync(
        engine,
        PollingDispatcher(),
        reload(engine, record),
        full=full,
        trigger="manual",
        max_attempts=1,
    )
    return run_job(settings, job)


def test_a_configured_source_syncs_through_its_job(
    clean_db: Engine, settings: Settings, wiki: Wiki, site: str, token: str
) -> None:
    record = add_eng_wiki(clean_db, settings, config(site))

    first = run_sync(settings, clean_db, record, full=False)

    assert first.status == "succeeded", first.error
    assert first.result is not None
    assert (first.result["added"], first.result["failed"]) == (4, 0)
    with clean_db.connect() as conn:
        state = get_source(conn, record.id).state
    assert dt.datetime.fromisoformat(state["watermark"]) == page(wiki, "Cafeteria").when
    assert {row["source"] for row in documents(clean_db).values()} == {"confluence:eng-wiki"}

    wiki.edit(page(wiki, "Rotate TLS certificates").id, TLS + "<p>Use the new CA from May.</p>")
    second = run_sync(settings, clean_db, record, full=False)
    assert second.result is not None
    assert (second.result["updated"], second.result["unchanged"]) == (1, 1)


def test_bad_credentials_fail_the_job_with_a_clear_error(
    clean_db: Engine,
    settings: Settings,
    wiki: Wiki,
    site: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "an-expired-token")
    record = add_eng_wiki(clean_db, settings, config(site))

    job = run_sync(settings, clean_db, record, full=True)

    assert job.status == "failed"
    assert job.error is not None
    assert "SourceUnavailable" in job.error
    assert "refused the credentials (HTTP 401)" in job.error
    assert TOKEN_ENV in job.error
    assert wiki.reads == []
    assert documents(clean_db) == {}
    with clean_db.connect() as conn:
        runs = conn.execute(sa.text("SELECT status, errors FROM sync_runs")).mappings().all()
    assert [run["status"] for run in runs] == ["failed"]
    assert "HTTP 401" in runs[0]["errors"][-1]["reason"]

    monkeypatch.delenv(TOKEN_ENV)
    unset = run_sync(settings, clean_db, record, full=True)
    assert unset.status == "failed"
    assert unset.error is not None
    assert f"the environment variable {TOKEN_ENV} is not set" in unset.error


def test_a_configuration_with_a_secret_in_clear_is_refused(
    clean_db: Engine, settings: Settings
) -> None:
    site = "https://wiki.example.com"
    with pytest.raises(ConfigurationError, match=r"token looks like a secret.*set token_env"):
        add_eng_wiki(clean_db, settings, {"base_url": site, "space": "ENG", "token": "pat-123"})
    with pytest.raises(ConfigurationError, match="base_url carries a password"):
        add_eng_wiki(clean_db, settings, config("https://ops:hunter2@wiki.example.com"))
    with pytest.raises(ConfigurationError, match="invalid confluence source configuration"):
        add_eng_wiki(clean_db, settings, config(site, timezone="Mars/Olympus"))
    with clean_db.connect() as conn:
        assert list_sources(conn) == []
