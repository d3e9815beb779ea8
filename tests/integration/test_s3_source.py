"""The S3 source against a real S3-compatible server (moto, started here) and the
machine's RabbitMQ: listing and event syncs run as jobs, event notifications checked,
their queue consumed, and the source's errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import pytest
import sqlalchemy as sa
from kombu import Connection, Producer, Queue
from sqlalchemy.engine import Engine

from ragline.config import Settings
from ragline.domain import Filter
from ragline.embedding.base import Embedder
from ragline.errors import ConfigurationError, IngestError, SourceUnavailable
from ragline.handlers import JOB_KINDS
from ragline.ingest.connectors.base import SourceItem
from ragline.ingest.connectors.kinds import SourceContext
from ragline.ingest.connectors.s3.kind import KIND
from ragline.ingest.connectors.s3.source import KeyFilter, S3Config, S3Source
from ragline.jobs.dispatch import PollingDispatcher
from ragline.jobs.executor import JobExecutor
from ragline.jobs.store import Job, get_job
from ragline.search.hybrid import Searcher
from ragline.sources.build import build_context, build_source
from ragline.sources.consumers.s3 import consume as consume_events
from ragline.sources.registry import ConsumeOptions
from ragline.sources.service import enqueue_sync
from ragline.sources.store import SourceRecord
from tests.integration.s3_server import REGION, moto_server, s3_client
from tests.integration.service import client_for, serve_in_thread
from tests.integration.sources_util import add_source, allow, run_job, sync_now
from tests.integration.test_api import make_pdf

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

AMQP_URL = ""  # this module's RabbitMQ virtual host (tests/services.py), set by ``queue``
KEY_ID_ENV = "TEST_S3_KEY_ID"
SECRET_ENV = "TEST_S3_SECRET"
EVENTS_URL_ENV = "TEST_S3_EVENTS_URL"

OBJECTS = {
    "docs/guides/pumps.md": b"# Pump care\n\nGrease the impeller bearings every 500 hours.\n",
    "docs/guides/valves.txt": b"Exercise every gate valve twice a year so that none seizes.\n",
    "docs/faq.html": b"<html><body><h1>FAQ</h1><p>Chlorine residual is logged daily.</p></body>",
    "docs/drafts/notes.md": b"# Draft\n\nNot for the index.\n",  # excluded
    "docs/logo.png": b"\x89PNG not a document",  # not a supported type
    "elsewhere/other.md": b"# Outside\n\nOutside the prefix.\n",
}
LISTED = ["docs/faq.html", "docs/guides/pumps.md", "docs/guides/valves.txt"]

PDF_KEY = "docs/manuals/Heat Exchanger+Service.pdf"
PDF_TEXT = (
    "# Plate heat exchanger service\n\nDescale the titanium plates with citric acid when the "
    "approach temperature rises above four kelvin."
)
PDF_QUERY = "descale the titanium plates of the heat exchanger"


@pytest.fixture(autouse=True)
def _allowed(clean_db: Engine) -> None:
    """The operator lets the tests' tenant reach the local S3 server and broker with the
    credentials these variables hold."""
    allow(clean_db, env=(KEY_ID_ENV, SECRET_ENV, EVENTS_URL_ENV))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Client:
    monkeypatch.setenv(KEY_ID_ENV, "testing")
    monkeypatch.setenv(SECRET_ENV, "testing")
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3: S3Client) -> str:
    name = f"handbooks-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    for key, body in OBJECTS.items():
        s3.put_object(Bucket=name, Key=key, Body=body)
    return name


def s3_config(bucket: str, endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefix": "docs/",
        "endpoint_url": endpoint,
        "region": REGION,
        "access_key_id_env": KEY_ID_ENV,
        "secret_access_key_env": SECRET_ENV,
        "exclude": ["drafts/*"],
        **extra,
    }


@pytest.fixture
def record(clean_db: Engine, bucket: str, s3_endpoint: str) -> SourceRecord:
    return add_source(
        clean_db,
        name="handbooks",
        kind="s3",
        collection="handbooks",
        config=s3_config(bucket, s3_endpoint),
    )


@pytest.fixture
def synced(settings: Settings, clean_db: Engine, record: SourceRecord) -> SourceRecord:
    """The source, after its first full sync."""
    result = sync_now(settings, clean_db, record, full=True)
    assert (result["added"], result["failed"]) == (3, 0), result
    return record


@pytest.fixture
def searcher(clean_db: Engine, settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(clean_db, settings, embedder)


def notification(
    bucket: str,
    key: str,
    event: str = "ObjectCreated:Put",
    *,
    sequencer: str | None = "0062E99A88DC407460",
    when: dt.datetime | None = None,
) -> dict[str, Any]:
    """An S3 event notification, as S3 publishes it (the key URL-encoded)."""
    when = when or dt.datetime.now(dt.UTC)
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1024, "eTag": "0" * 32}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": event,
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ragline",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def parse(record: SourceRecord, body: dict[str, Any]) -> list[dict[str, Any]]:
    assert KIND.parse_notification is not None
    return KIND.parse_notification(KIND.validate(record.config), body)


def sync_events(
    settings: Settings, engine: Engine, record: SourceRecord, body: dict[str, Any]
) -> Job:
    """Queue the sync a notification asks for (as the webhook and the consumer do), run it."""
    job = enqueue_sync(
        engine, PollingDispatcher(), record, full=False, trigger="event", events=parse(record, body)
    )
    return run_job(settings, job)


def documents(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT doc_id, status, uri, etag, metadata, last_synced_at FROM documents")
        ).mappings()
        return {row["doc_id"]: dict(row) for row in rows}


def hit_ids(searcher: Searcher, query: str) -> list[str]:
    hits = searcher.search(query, k=5, search_filter=Filter(collection="handbooks"))
    return [hit.doc_id for hit in hits]


def test_a_full_sync_indexes_the_supported_objects_under_the_prefix(
    clean_db: Engine, synced: SourceRecord, bucket: str
) -> None:
    indexed = documents(clean_db)
    assert sorted(indexed) == LISTED
    pumps = indexed["docs/guides/pumps.md"]
    assert pumps["uri"] == f"s3://{bucket}/docs/guides/pumps.md"
    assert pumps["etag"] == hashlib.md5(OBJECTS["docs/guides/pumps.md"]).hexdigest()
    assert (
        pumps["metadata"]["sha256"] == hashlib.sha256(OBJECTS["docs/guides/pumps.md"]).hexdigest()
    )


def test_an_object_created_event_makes_a_new_pdf_searchable(
    settings: Settings,
    clean_db: Engine,
    synced: SourceRecord,
    bucket: str,
    s3: S3Client,
    searcher: Searcher,
) -> None:
    assert PDF_KEY not in hit_ids(searcher, PDF_QUERY)
    pdf = make_pdf(PDF_TEXT)
    s3.put_object(Bucket=bucket, Key=PDF_KEY, Body=pdf)

    done = sync_events(settings, clean_db, synced, notification(bucket, PDF_KEY))

    assert done.status == "succeeded", done.error
    assert done.result is not None
    # Only the object the event named was looked at: nothing was listed.
    assert (done.result["added"], done.result["unchanged"], done.result["deleted"]) == (1, 0, 0)
    hits = searcher.search(PDF_QUERY, k=3, search_filter=Filter(collection="handbooks"))
    assert hits[0].doc_id == PDF_KEY
    assert hits[0].doc_type == "pdf"
    assert hits[0].uri == f"s3://{bucket}/{PDF_KEY}"
    assert documents(clean_db)[PDF_KEY]["metadata"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    with clean_db.connect() as conn:
        trigger = conn.execute(
            sa.text("SELECT trigger FROM sync_runs WHERE job_id = :id"), {"id": done.id}
        ).scalar_one()
    assert trigger == "event"


def test_an_object_removed_event_removes_it_from_search(
    settings: Settings,
    clean_db: Engine,
    synced: SourceRecord,
    bucket: str,
    s3: S3Client,
    searcher: Searcher,
) -> None:
    s3.put_object(Bucket=bucket, Key=PDF_KEY, Body=make_pdf(PDF_TEXT))
    assert sync_events(settings, clean_db, synced, notification(bucket, PDF_KEY)).result
    assert PDF_KEY in hit_ids(searcher, PDF_QUERY)

    s3.delete_object(Bucket=bucket, Key=PDF_KEY)
    done = sync_events(
        settings, clean_db, synced, notification(bucket, PDF_KEY, "ObjectRemoved:Delete")
    )

    assert done.status == "succeeded", done.error
    assert done.result is not None
    assert (done.result["deleted"], done.result["added"], done.result["unchanged"]) == (1, 0, 0)
    assert PDF_KEY not in hit_ids(searcher, PDF_QUERY)
    indexed = documents(clean_db)
    assert indexed[PDF_KEY]["status"] == "deleted"
    assert all(indexed[key]["status"] == "active" for key in LISTED)


def test_a_full_listing_repairs_missed_events(
    settings: Settings,
    clean_db: Engine,
    synced: SourceRecord,
    bucket: str,
    s3: S3Client,
    searcher: Searcher,
) -> None:
    """An object put and one deleted while no event reached us: the scheduled listing
    brings the index back in line."""
    s3.put_object(Bucket=bucket, Key=PDF_KEY, Body=make_pdf(PDF_TEXT))
    s3.delete_object(Bucket=bucket, Key="docs/faq.html")

    result = sync_now(settings, clean_db, synced, full=True)

    assert (result["added"], result["deleted"], result["unchanged"]) == (1, 1, 2)
    assert PDF_KEY in hit_ids(searcher, PDF_QUERY)
    assert "docs/faq.html" not in hit_ids(searcher, "chlorine residual logged daily")
    assert documents(clean_db)["docs/faq.html"]["status"] == "deleted"


def test_an_unchanged_bucket_is_not_even_read(
    settings: Settings, clean_db: Engine, synced: SourceRecord, bucket: str
) -> None:
    """Same ETags: no object is downloaded (the ledger is not even touched) and nothing
    is embedded, whether the bucket is listed again or an event is delivered twice."""
    before = documents(clean_db)

    result = sync_now(settings, clean_db, synced, full=True)
    again = sync_events(settings, clean_db, synced, notification(bucket, "docs/guides/pumps.md"))

    assert (result["unchanged"], result["added"], result["updated"]) == (3, 0, 0)
    assert (result["embedded"], result["embedding_calls"]) == (0, 0)
    assert again.result is not None
    assert (again.result["unchanged"], again.result["embedding_calls"]) == (1, 0)
    after = documents(clean_db)
    assert {k: v["last_synced_at"] for k, v in after.items()} == {
        k: v["last_synced_at"] for k, v in before.items()
    }


def test_an_edited_object_is_updated_by_its_event(
    settings: Settings,
    clean_db: Engine,
    synced: SourceRecord,
    bucket: str,
    s3: S3Client,
    searcher: Searcher,
) -> None:
    key = "docs/guides/pumps.md"
    s3.put_object(Bucket=bucket, Key=key, Body=b"# Pump care\n\nReplace the mechanical seal.\n")

    done = sync_events(settings, clean_db, synced, notification(bucket, key))

    assert done.result is not None
    assert (done.result["updated"], done.result["unchanged"]) == (1, 0)
    assert hit_ids(searcher, "replace the mechanical seal of the pump")[0] == key


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"hello": "world"}, r"not an S3 event notification"),
        ({"Records": "none"}, r"Records: Input should be a valid list"),
        ({"Records": [{"eventSource": "aws:s3"}]}, r"Records\.0\.eventTime: Field required"),
        ({"Type": "Notification", "Message": "{oops"}, r"Message is not JSON"),
        ({"Type": "SubscriptionConfirmation", "SubscribeURL": "x"}, r"SubscribeURL"),
    ],
)
def test_a_malformed_notification_is_refused_with_its_reason(
    record: SourceRecord, body: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        parse(record, body)


def test_a_malformed_record_is_refused_with_its_field(record: SourceRecord, bucket: str) -> None:
    missing_key = notification(bucket, "docs/a.md")
    del missing_key["Records"][0]["s3"]["object"]["key"]
    wrong_source = notification(bucket, "docs/a.md")
    wrong_source["Records"][0]["eventSource"] = "aws:sqs"
    bad_time = notification(bucket, "docs/a.md")
    bad_time["Records"][0]["eventTime"] = "yesterday"

    for body, field in (
        (missing_key, r"Records\.0\.s3\.object\.key"),
        (wrong_source, r"Records\.0\.eventSource"),
        (bad_time, r"Records\.0\.eventTime"),
    ):
        with pytest.raises(ConfigurationError, match=field):
            parse(record, body)


def test_a_notification_keeps_only_this_sources_objects(record: SourceRecord, bucket: str) -> None:
    when = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
    records = [
        *notification(bucket, "docs/guides/new pump.md", when=when)["Records"],
        *notification("another-bucket", "docs/guides/x.md")["Records"],
        *notification(bucket, "elsewhere/y.md")["Records"],
        *notification(bucket, "docs/drafts/z.md")["Records"],
        *notification(bucket, "docs/photo.jpg")["Records"],
        *notification(bucket, "docs/guides/t.md", "ObjectTagging:Put")["Records"],
        *notification(bucket, "docs/old.md", "s3:ObjectRemoved:Delete")["Records"],
    ]
    sns = {"Type": "Notification", "Message": json.dumps({"Records": records})}

    parsed = parse(record, sns)

    assert parsed == [
        {
            "key": "docs/guides/new pump.md",
            "event": "ObjectCreated:Put",
            "time": "2026-05-01T12:30:00Z",
            "sequencer": "0062E99A88DC407460",
        },
        {
            "key": "docs/old.md",
            "event": "ObjectRemoved:Delete",
            "time": parsed[1]["time"],
            "sequencer": "0062E99A88DC407460",
        },
    ]
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}
    assert parse(record, test_event) == []


def test_the_last_event_of_a_key_wins_and_the_object_decides(
    settings: Settings, clean_db: Engine, record: SourceRecord, bucket: str
) -> None:
    """Each key is looked up as it is now: a removal delivered after the object came back
    changes nothing; for a gone object, the last event by sequencer dates the deletion."""
    _, _, source = build_source(record, settings, clean_db)
    t1, t2 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC), dt.datetime(2026, 5, 2, tzinfo=dt.UTC)

    def records(key: str, *events: tuple[str, str | None, dt.datetime]) -> list[dict[str, Any]]:
        return [
            r
            for event, sequencer, when in events
            for r in parse(record, notification(bucket, key, event, sequencer=sequencer, when=when))
        ]

    batch = [
        *records("docs/guides/pumps.md", ("ObjectRemoved:Delete", "0B", t2)),
        # The removal is later by sequencer although its clock says earlier.
        *records("docs/gone.md", ("ObjectRemoved:Delete", "00FF", t1)),
        *records("docs/gone.md", ("ObjectCreated:Put", "00AA", t2)),
        # No sequencers: the times order them.
        *records("docs/lost.md", ("ObjectRemoved:Delete", None, t2)),
        *records("docs/lost.md", ("ObjectCreated:Put", None, t1)),
        *records("docs/never.md", ("ObjectCreated:Put", None, t1)),
    ]
    assert KIND.events is not None

    changes = KIND.events(source, batch)

    assert [item.doc_id for item in changes.items] == ["docs/guides/pumps.md"]
    assert changes.items[0].etag == hashlib.md5(OBJECTS["docs/guides/pumps.md"]).hexdigest()
    assert changes.deleted == {"docs/gone.md": t1, "docs/lost.md": t2, "docs/never.md": None}


def test_a_job_with_malformed_event_records_fails_with_the_reason(
    settings: Settings, clean_db: Engine, record: SourceRecord
) -> None:
    job = enqueue_sync(
        clean_db, PollingDispatcher(), record, full=False, trigger="event", events=[{"key": "a"}]
    )
    done = run_job(settings, job)
    assert done.status == "failed"
    assert done.error is not None
    assert "malformed S3 event records" in done.error
    assert "time: Field required" in done.error


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch, amqp_url: str) -> Iterator[str]:
    global AMQP_URL
    AMQP_URL = amqp_url
    """A queue of its own on the machine's RabbitMQ, as an operator would create it
    (bound to the exchange the bucket publishes to); deleted afterwards."""
    name = f"ragline-test-s3-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(EVENTS_URL_ENV, AMQP_URL)
    try:
        with Connection(AMQP_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
            Queue(name, durable=True).bind(conn.channel()).declare()
    except Exception as e:  # the test machine's broker is down: say so, loudly
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_URL}: {e}")
    yield name
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for queue_name in (name, f"{name}.dlq"):
            Queue(queue_name).bind(channel).delete()


def consuming(
    clean_db: Engine, settings: Settings, bucket: str, endpoint: str, queue: str
) -> tuple[SourceRecord, S3Config, SourceContext]:
    config = s3_config(bucket, endpoint, events_queue=queue, events_url_env=EVENTS_URL_ENV)
    record = add_source(
        clean_db, name="handbooks", kind="s3", collection="handbooks", config=config
    )
    _, validated, context = build_context(record, settings, clean_db)
    return record, validated, context


def publish(queue: str, *bodies: bytes) -> None:
    with Connection(AMQP_URL) as conn:
        producer = Producer(conn.channel())
        for body in bodies:
            producer.publish(
                body,
                routing_key=queue,
                exchange="",
                content_type="application/json",
                content_encoding="utf-8",
            )


def event_jobs(engine: Engine) -> list[Job]:
    with engine.connect() as conn:
        ids = conn.execute(
            sa.text("SELECT id FROM jobs WHERE payload ? 'events' ORDER BY created_at")
        ).scalars()
        jobs = [get_job(conn, job_id) for job_id in ids]
    return [job for job in jobs if job is not None]


def test_the_queue_consumer_turns_events_into_jobs_and_dead_letters_the_malformed(
    settings: Settings,
    clean_db: Engine,
    bucket: str,
    s3: S3Client,
    s3_endpoint: str,
    queue: str,
    searcher: Searcher,
) -> None:
    record, config, context = consuming(clean_db, settings, bucket, s3_endpoint, queue)
    assert sync_now(settings, clean_db, record, full=True)["added"] == 3
    s3.put_object(Bucket=bucket, Key=PDF_KEY, Body=make_pdf(PDF_TEXT))
    s3.delete_object(Bucket=bucket, Key="docs/faq.html")
    publish(
        queue,
        json.dumps(notification(bucket, PDF_KEY)).encode(),
        b"{this is not json",
        json.dumps(notification(bucket, "docs/faq.html", "ObjectRemoved:Delete")).encode(),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}).encode(),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}).encode(),
    )
    assert KIND.backlog is not None
    assert KIND.backlog(config, context) == 5
    consume_events(config, context, ConsumeOptions(consumers=2, idle_timeout=1.5))

    jobs = event_jobs(clean_db)
    assert jobs
    assert all(job.payload["trigger"] == "event" for job in jobs)
    keys = sorted(event["key"] for job in jobs for event in job.payload["events"])
    assert keys == ["docs/faq.html", PDF_KEY]
    assert KIND.backlog(config, context) == 0  # every message acknowledged
    with Connection(AMQP_URL) as conn:
        dead = Queue(f"{queue}.dlq").bind(conn.channel())
        first, second, third = (dead.get(no_ack=True) for _ in range(3))
    assert first is not None
    assert second is not None
    assert third is None
    letters = sorted((first, second), key=lambda letter: letter.headers["x-ragline-reason"])
    reasons = [letter.headers["x-ragline-reason"] for letter in letters]
    assert reasons[0].startswith("malformed S3 event notification: Records.0.eventVersion")
    assert reasons[1].startswith("not JSON")
    # The original bodies, as they came (py-amqp decodes a body of a declared encoding).
    bodies = [letter.body for letter in letters]
    assert [b.decode() if isinstance(b, bytes) else b for b in bodies] == [
        '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
        "{this is not json",
    ]
    assert {letter.content_type for letter in letters} == {"application/json"}
    for job in jobs:
        assert run_job(settings, job).status == "succeeded"
    assert PDF_KEY in hit_ids(searcher, PDF_QUERY)
    assert documents(clean_db)["docs/faq.html"]["status"] == "deleted"


def test_the_consumer_stops_when_asked_and_needs_its_queue(
    settings: Settings, clean_db: Engine, bucket: str, s3_endpoint: str, queue: str
) -> None:
    _, config, context = consuming(clean_db, settings, bucket, s3_endpoint, queue)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    consume_events(config, context, ConsumeOptions(stop=stop.is_set))  # returns: it was asked
    assert stop.is_set()

    missing = config.model_copy(update={"events_queue": f"{queue}-missing"})
    with pytest.raises(SourceUnavailable, match="does not exist"):
        consume_events(missing, context, ConsumeOptions(idle_timeout=1))


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"secret_access_key": "wJalrXUtnFEMI"}, r"secret_access_key looks like a secret"),
        ({"events_url": "amqp://ops:hunter2@mq//"}, r"events_url carries a password"),
        ({"access_key_id_env": "KEY"}, r"set both access_key_id_env and secret_access_key_env"),
        ({"events_queue": "s3-events"}, r"events_queue needs the broker's URL"),
        ({"buckett": "typo"}, r"buckett: Extra inputs are not permitted"),
    ],
)
def test_a_configuration_with_a_secret_in_clear_or_a_mistake_is_refused(
    clean_db: Engine, config: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        add_source(
            clean_db,
            name="bad",
            kind="s3",
            collection="handbooks",
            config={"bucket": "handbooks", **config},
        )
    with clean_db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sources")).scalar_one() == 0


def test_a_missing_bucket_makes_the_job_retry_with_what_to_check(
    settings: Settings, clean_db: Engine, s3: S3Client, s3_endpoint: str
) -> None:
    record = add_source(
        clean_db,
        name="gone",
        kind="s3",
        collection="handbooks",
        config=s3_config(f"missing-{uuid.uuid4().hex[:8]}", s3_endpoint),
    )
    job = enqueue_sync(clean_db, PollingDispatcher(), record, full=True, trigger="manual")

    retry_in = JobExecutor(settings, clean_db, kinds=JOB_KINDS).execute_id(job.id, worker="test")

    assert retry_in is not None
    with clean_db.connect() as conn:
        retried = get_job(conn, job.id)
    assert retried is not None
    assert retried.status == "retrying"
    assert retried.error is not None
    assert "SourceUnavailable" in retried.error
    assert "does not exist" in retried.error
    assert "check bucket, region and endpoint_url" in retried.error


def test_unset_credentials_variables_fail_the_job_with_their_name(
    settings: Settings, clean_db: Engine, record: SourceRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    job = enqueue_sync(clean_db, PollingDispatcher(), record, full=True, trigger="manual")
    done = run_job(settings, job)
    assert done.status == "failed"
    assert done.error is not None
    assert f"the environment variable {SECRET_ENV} is not set" in done.error


def test_listing_pages_and_the_size_limit(s3: S3Client, bucket: str, s3_endpoint: str) -> None:
    source = S3Source(
        s3, bucket, keys=KeyFilter("docs/", exclude=("drafts/*",)), max_bytes=40, page_size=2
    )
    assert sorted(item.doc_id for item in source.list()) == LISTED

    big = SourceItem(doc_id="docs/guides/pumps.md", name="pumps.md", uri="s3://x")
    with pytest.raises(IngestError, match="over the limit of 40"):
        source.read(big)
    gone = SourceItem(doc_id="docs/nothing.md", name="nothing.md", uri="s3://x/nothing")
    with pytest.raises(IngestError, match="no longer exists") as raised:
        source.read(gone)
    assert not isinstance(raised.value, SourceUnavailable)
    assert source.head("docs/nothing.md") is None


def test_the_webhook_takes_notifications_over_http_and_the_object_is_searchable(
    settings: Settings, clean_db: Engine, s3: S3Client, bucket: str, s3_endpoint: str
) -> None:
    allow(clean_db, "acme", env=(KEY_ID_ENV, SECRET_ENV))
    fast = settings.model_copy(update={"rate_limit_burst": 10_000})
    with serve_in_thread(fast) as url:
        admin = client_for(url, clean_db, "acme", "admin")
        writer = client_for(url, clean_db, "acme", "writer")
        reader = client_for(url, clean_db, "acme", "reader")
        created = admin.post(
            "/v1/sources",
            json={
                "name": "handbooks",
                "kind": "s3",
                "collection": "handbooks",
                "config": s3_config(bucket, s3_endpoint),
                "schedule": "0 3 * * *",
            },
        )
        assert created.status_code == 201, created.text
        source_id = created.json()["id"]
        s3.put_object(Bucket=bucket, Key=PDF_KEY, Body=make_pdf(PDF_TEXT))

        assert reader.post(f"/v1/sources/{source_id}/events", json={}).status_code == 403
        bad = writer.post(f"/v1/sources/{source_id}/events", json={"Records": [{"s3": {}}]})
        assert bad.status_code == 422
        assert "Records.0" in bad.json()["detail"]
        elsewhere = writer.post(
            f"/v1/sources/{source_id}/events", json=notification("another-bucket", PDF_KEY)
        )
        assert elsewhere.json() == {"job_id": None, "events": 0}

        queued = writer.post(f"/v1/sources/{source_id}/events", json=notification(bucket, PDF_KEY))
        assert queued.status_code == 202, queued.text
        assert queued.json()["events"] == 1
        job = writer.wait_job(queued.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        assert job["result"]["added"] == 1
        hits = writer.search(PDF_QUERY, filters={"collection": "handbooks"})
        assert hits[0]["document_id"] == PDF_KEY
        assert hits[0]["uri"] == f"s3://{bucket}/{PDF_KEY}"

        s3.delete_object(Bucket=bucket, Key=PDF_KEY)
        removed = writer.post(
            f"/v1/sources/{source_id}/events",
            json=notification(
                bucket, PDF_KEY, "ObjectRemoved:Delete", sequencer="0062E99A88DC407461"
            ),
        )
        assert writer.wait_job(removed.json()["job_id"])["result"]["deleted"] == 1
        assert PDF_KEY not in {
            hit["document_id"]
            for hit in writer.search(PDF_QUERY, filters={"collection": "handbooks"})
        }
