"""The change-event stream source: Debezium envelopes from a RabbitMQ queue or a Redis
stream, taken by several consumers at once (and by a process killed halfway), end in
exactly the final state of every row; what cannot be indexed is dead-lettered."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import sqlalchemy as sa
from kombu import Connection, Producer
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from ragline.config import Settings
from ragline.errors import ConfigurationError, MalformedEvent
from ragline.ingest.connectors.kinds import Profiles, SourceContext
from ragline.ingest.connectors.stream.kind import KIND
from ragline.ingest.connectors.stream.source import StreamSource
from ragline.sources.build import build_context
from ragline.sources.consumers.stream import consume as consume_stream
from ragline.sources.registry import ConsumeOptions, get_consumer
from ragline.sources.store import SourceRecord, SourceSpec, create_source
from tests.integration.sources_util import allow, local_allowance
from tests.integration.webhook_receiver import Receiver, webhook_receiver

# This module's RabbitMQ virtual host and Redis database (tests/services.py), set by
# ``_services`` before its first test.
AMQP_URL = REDIS_URL = ""
CDC_URL_ENV = "TEST_CDC_URL"
ROOT = Path(__file__).resolve().parents[2]
COLLECTION = "cdc"
BASE_MS = 1_717_200_000_000

CATEGORIES: dict[str, dict[str, Any]] = {
    "posts": {
        "title_fields": ["title"],
        "text_fields": ["body"],
        "metadata_fields": ["author"],
        "date_field": "published_at",
    },
    "articles": {"title_fields": ["headline"], "text_fields": ["summary", "body_html"]},
    "repositories": {
        "title_fields": ["name"],
        "text_fields": ["readme"],
        "metadata_fields": ["stars"],
        "date_field": "updated_at",
    },
}

# fmt: off
_WORDS = [
    "river", "estuary", "sonde", "logger", "oxygen", "nitrate", "turbidity", "salinity",
    "tide", "sensor", "cable", "bracket", "modem", "battery", "panel", "firmware", "alarm",
    "wiper", "calibration", "sample", "depth", "pressure", "station",
]
# fmt: on


def _sentences(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."
        for _ in range(count)
    ]


# Few distinct texts, many versions: the embedding model sees each text once.
TEXTS = _sentences(1, 20)
TITLES = ["Field notes", "Station log", "Sensor care", "Tide report"]


def words(text: str) -> list[str]:
    return text.split()


# -- a corpus of change events ---------------------------------------------------------


@dataclass
class Message:
    body: bytes
    key: bytes | None = None


@dataclass
class Corpus:
    messages: list[Message] = field(default_factory=list)
    # doc_id -> (text of its last version, or None when its last event deletes it; time)
    final: dict[str, tuple[str | None, dt.datetime]] = field(default_factory=dict)
    # body of each malformed message -> a fragment of the reason it must be given
    malformed: dict[bytes, str] = field(default_factory=dict)
    # events published after a newer version of their document
    late: int = 0
    # documents whose last message published is not their last version
    late_last: int = 0


def envelope(
    op: str,
    table: str,
    ts_ms: int,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    wrapped: bool = False,
    **source: Any,
) -> bytes:
    value = {
        "op": op,
        "before": before,
        "after": after,
        "source": {"connector": "postgresql", "db": "app", "table": table, "ts_ms": ts_ms} | source,
        "ts_ms": ts_ms + 7,
    }
    if wrapped:
        value = {
            "schema": {"type": "struct", "name": f"app.public.{table}.Envelope"},
            "payload": value,
        }
    return json.dumps(value).encode()


def row(category: str, key: int | str, rng: random.Random) -> tuple[dict[str, Any], str]:
    """A row of ``category`` and the text its document must hold."""
    title, text = rng.choice(TITLES), rng.choice(TEXTS)
    if category == "posts":
        day = rng.randint(1, 28)
        return {
            "id": key,
            "title": title,
            "body": text,
            "author": "kim",
            "published_at": f"2024-03-{day:02}",
        }, text
    if category == "articles":
        summary, body = text.split(" ", 1)
        html = f"<div><p>{body}</p><script>track()</script></div>"
        return {"id": key, "headline": title, "summary": summary, "body_html": html}, text
    return {"id": key, "name": title, "readme": text, "stars": 3, "updated_at": BASE_MS}, text


def malformed_message(n: int) -> tuple[Message, str]:
    """The ``n``-th malformed message, unique, and a fragment of its reason."""
    good = {"id": 90_000 + n, "title": "Bad", "body": "Never indexed."}
    ts = BASE_MS + n
    cases: list[tuple[bytes, str]] = [
        (b'{"op": "c", "after": {"id": %d' % n, "not JSON"),
        (b"\x80\x81 not text %d" % n, "not UTF-8"),
        (envelope("x", "posts", ts, after=good), "op: Input should be"),
        (envelope("c", "posts", ts, after={"title": "No id", "body": f"x {n}"}), "no id"),
        (envelope("c", "comments", ts, after=good), "unknown category 'comments'"),
        (envelope("u", "posts", ts, before=good), "needs 'after'"),
        (envelope("d", "posts", ts, marker=n), "needs 'before' or a message key"),
        (json.dumps([n, "not an envelope"]).encode(), "not a change event"),
        (
            json.dumps({"op": "c", "after": good, "source": {"table": "posts", "n": n}}).encode(),
            "source.ts_ms",
        ),
        (
            envelope("c", "posts", ts, after={"id": n, "title": "No body"}),
            "none of the text fields",
        ),
    ]
    body, reason = cases[n % len(cases)]
    return Message(body), reason


def make_corpus(seed: int, *, docs: int, versions: int, duplicates: int, malformed: int) -> Corpus:
    """``docs`` documents per category, ``versions`` events each (creates, updates,
    deletes and re-creates) in the order of their times, except that some arrive late
    (after newer ones), some twice; and ``malformed`` messages among them."""
    rng = random.Random(seed)
    corpus = Corpus()
    events: list[tuple[int, str, Message]] = []
    for category in CATEGORIES:
        for n in range(docs):
            key: int | str = f"art-{n}" if category == "articles" else n
            doc_id = f"{category}:{key}"
            ts = BASE_MS + rng.randint(0, 4000)
            last: dict[str, Any] | None = None
            ends_deleted = rng.random() < 0.15
            for step in range(versions):
                ts += rng.randint(1, 300)
                final_step = step == versions - 1
                if last is not None and (rng.random() < 0.06 or (final_step and ends_deleted)):
                    keyed = rng.random() < 0.3
                    body = envelope(
                        "d",
                        category,
                        ts,
                        before=None if keyed else last,
                        wrapped=rng.random() < 0.1,
                    )
                    message = Message(body, json.dumps({"id": key}).encode() if keyed else None)
                    last, text = None, None
                else:
                    op = ("r" if step == 0 and rng.random() < 0.3 else "c") if last is None else "u"
                    after, text = row(category, key, rng)
                    body = envelope(
                        op, category, ts, before=last, after=after, wrapped=rng.random() < 0.1
                    )
                    message, last = Message(body), after
                events.append((ts, doc_id, message))
                corpus.final[doc_id] = (text, at(ts))
    events.sort(key=lambda e: e[0])
    placed: list[tuple[float, int, str, Message]] = []
    for index, (ts, doc_id, message) in enumerate(events):
        late = rng.random() < 0.03  # published after newer versions of its document
        placed.append((index + (rng.randint(20, 400) if late else 0), ts, doc_id, message))
    for index in rng.sample(range(len(events)), duplicates):
        placed.append((index + rng.randint(1, 2000) + 0.5, *events[index]))
    placed.sort(key=lambda p: p[0])
    newest: dict[str, int] = {}
    last_published: dict[str, int] = {}
    for _, ts, doc_id, message in placed:
        corpus.late += ts < newest.get(doc_id, 0)
        newest[doc_id] = max(ts, newest.get(doc_id, 0))
        last_published[doc_id] = ts
        corpus.messages.append(message)
    corpus.late_last = sum(last_published[d] < newest[d] for d in newest)
    for n in range(malformed):
        message, reason = malformed_message(n)
        corpus.malformed[message.body] = reason
        corpus.messages.insert(rng.randint(0, len(corpus.messages)), message)
    return corpus


def at(ts_ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ts_ms)


# -- checks ----------------------------------------------------------------------------


def assert_final_state(engine: Engine, final: dict[str, tuple[str | None, dt.datetime]]) -> None:
    """Exactly the last version of every document is indexed; deleted ones are gone."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                SELECT d.doc_id, d.status, d.source_modified, d.chunk_count,
                       coalesce(string_agg(c.text, ' ' ORDER BY c.ordinal), '') AS text
                FROM documents d LEFT JOIN chunks c ON c.document_id = d.id
                WHERE d.collection = :collection GROUP BY d.id
                """
            ),
            {"collection": COLLECTION},
        ).all()
    found = {r.doc_id: r for r in rows}
    assert set(found) == set(final)
    active = {doc_id for doc_id, (text, _) in final.items() if text is not None}
    assert {d for d, r in found.items() if r.status == "active"} == active
    wrong_text = [
        (d, found[d].text, final[d][0])
        for d in sorted(active)
        if words(found[d].text) != words(final[d][0] or "")
    ]
    assert not wrong_text, wrong_text[:5]
    wrong_time = [
        (d, found[d].source_modified, when)
        for d, (_, when) in sorted(final.items())
        if found[d].source_modified != when
    ]
    assert not wrong_time, wrong_time[:5]
    leftovers = [d for d, r in found.items() if d not in active and (r.chunk_count or r.text)]
    assert not leftovers
    assert {r.status for d, r in found.items() if d not in active} <= {"deleted"}


def stream_runs(engine: Engine, record: SourceRecord) -> Sequence[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                """
                SELECT id, status, trigger, mode, source_id, added, updated, unchanged, deleted,
                       failed, errors FROM sync_runs WHERE source = :source ORDER BY id
                """
            ),
            {"source": record.ledger_name},
        ).all()


def add_source(
    engine: Engine, name: str, config: dict[str, Any], profiles: dict[str, Any] | None = None
) -> SourceRecord:
    spec = SourceSpec(
        name=name, kind="stream", collection=COLLECTION, config=config, profiles=profiles or {}
    )
    with engine.begin() as conn:
        return create_source(conn, tenant="default", spec=spec)


def context_for(record: SourceRecord, settings: Settings, engine: Engine) -> SourceContext:
    return build_context(record, settings, engine)[2]


def consume(record: SourceRecord, context: SourceContext, **options: Any) -> None:
    consume_stream(KIND.validate(record.config), context, ConsumeOptions(**options))


@pytest.fixture(autouse=True)
def _allowed(clean_db: Engine) -> None:
    """The operator lets the tests' tenant reach the local brokers."""
    allow(clean_db, env=(CDC_URL_ENV,))


@pytest.fixture(scope="module", autouse=True)
def _services(amqp_url: str, redis_url: str) -> None:
    global AMQP_URL, REDIS_URL
    AMQP_URL, REDIS_URL = amqp_url, redis_url


# -- RabbitMQ --------------------------------------------------------------------------


@pytest.fixture
def amqp_queue() -> Iterator[str]:
    """A fresh durable queue; it and its dead-letter queue are deleted afterwards."""
    name = f"ragline-test-cdc-{uuid.uuid4().hex[:10]}"
    with Connection(AMQP_URL) as conn:
        channel(conn).queue_declare(queue=name, durable=True, auto_delete=False)
        try:
            yield name
        finally:
            for queue in (name, f"{name}.dlq"):
                channel(conn).queue_delete(queue=queue)


def channel(conn: Connection) -> Any:
    """A py-amqp channel (kombu types it as its abstract channel)."""
    return cast("Any", conn.channel())


def publish(queue: str, messages: list[Message]) -> None:
    with Connection(AMQP_URL) as conn:
        producer = Producer(conn.channel())
        for message in messages:
            producer.publish(
                message.body,
                exchange="",
                routing_key=queue,
                content_type="application/json",
                content_encoding="binary",
                headers={"key": message.key.decode()} if message.key else {},
                delivery_mode=2,
            )
    wait_until(lambda: queue_counts(queue)[0] >= len(messages), "the messages to be queued")


def queue_counts(queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of ``queue``."""
    with Connection(AMQP_URL) as conn:
        ok = channel(conn).queue_declare(queue=queue, passive=True)
        return int(ok.message_count), int(ok.consumer_count)


def dead_letters(queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    out = []
    with Connection(AMQP_URL) as conn:
        getter = channel(conn)
        while (message := getter.basic_get(queue=queue, no_ack=True)) is not None:
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            out.append((body, dict(message.headers or {})))
    return out


def wait_until(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def rabbit_config(queue: str, **extra: Any) -> dict[str, Any]:
    return {
        "transport": "rabbitmq",
        "url_env": CDC_URL_ENV,
        "queue": queue,
        "categories": CATEGORIES,
        "batch_wait_seconds": 0.2,
    } | extra


def kill_mid_batch(record: SourceRecord) -> tuple[int, list[str]]:
    """Start a consumer process (three consumers) and SIGKILL it while it writes a
    batch, after it has committed two; returns the batches it had committed, and the
    last lines it logged."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ragline",
            "consume",
            str(record.id),
            "--consumers",
            "3",
            "--idle-timeout",
            "60",
        ],
        cwd=ROOT,
        env={**os.environ, "RAGLINE_LOG_FORMAT": "json", "RAGLINE_LOG_LEVEL": "info"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    applied = 0
    tail: deque[str] = deque(maxlen=20)
    deadline = time.monotonic() + 120
    try:
        for line in process.stderr:
            tail.append(line)
            if time.monotonic() > deadline or not line.startswith("{"):
                continue
            event = json.loads(line).get("event")
            if event == "stream_batch_applied":
                applied += 1
            elif event == "document_indexed" and applied >= 2:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=30)
    return applied, list(tail)


@pytest.mark.slow
def test_rabbitmq_events_end_in_the_final_state(
    clean_db: Engine,
    settings: Settings,
    amqp_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = make_corpus(7, docs=100, versions=32, duplicates=300, malformed=100)
    assert len(corpus.messages) == 10_000
    # Indexing in the order of arrival would leave some documents at an older version.
    assert corpus.late > 100
    assert corpus.late_last > 0
    monkeypatch.setenv(CDC_URL_ENV, AMQP_URL)
    record = add_source(clean_db, "blog-cdc", rabbit_config(amqp_queue, report_every_seconds=3))
    publish(amqp_queue, corpus.messages)

    applied, logged = kill_mid_batch(record)
    assert applied >= 2, "".join(logged)
    with clean_db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one() > 0
    wait_until(lambda: queue_counts(amqp_queue)[1] == 0, "the killed consumers to go")
    left, _ = queue_counts(amqp_queue)
    assert 0 < left < 10_000
    dead_before, _ = queue_counts(f"{amqp_queue}.dlq")
    runs_before = {r.id for r in stream_runs(clean_db, record)}  # the killed process's

    started = time.perf_counter()
    consume(record, context_for(record, settings, clean_db), consumers=3, idle_timeout=3)
    seconds = time.perf_counter() - started - 3
    with capsys.disabled():
        print(f"\n{left} events in {seconds:.1f} s by 3 consumers: {left / seconds:.0f} events/s")

    assert queue_counts(amqp_queue) == (0, 0)
    assert_final_state(clean_db, corpus.final)

    dead = dead_letters(f"{amqp_queue}.dlq")
    bodies = {body for body, _ in dead}
    assert bodies == set(corpus.malformed)
    # At least once: a consumer killed between publishing a dead letter and acking the
    # original publishes it again; one at most per consumer killed.
    assert len(dead) - len(corpus.malformed) <= 3
    for body, headers in dead:
        assert corpus.malformed[body] in headers["x-ragline-reason"], headers
        assert headers["x-ragline-queue"] == amqp_queue

    runs = [r for r in stream_runs(clean_db, record) if r.id not in runs_before]
    assert len(runs) >= 2  # one every report_every_seconds, and the last at the stop
    assert {(r.trigger, r.mode, r.source_id) for r in runs} == {("stream", "stream", record.id)}
    assert sum(r.failed for r in runs) == len(dead) - dead_before
    reasons = [e["reason"] for r in runs for e in r.errors]
    assert all(reason.startswith("dead-lettered: ") for reason in reasons)
    assert sum(r.added + r.updated + r.unchanged + r.deleted for r in runs) > 0
    assert {r.status for r in runs if r.failed} == {"failed"}


@contextmanager
def consuming(record: SourceRecord, context: SourceContext, **options: Any) -> Iterator[list[Any]]:
    """The source consumed in a thread until the block ends; the errors it raised."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            consume(record, context, stop=stop.is_set, **options)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(60)


@contextmanager
def documents_table_gone(engine: Engine) -> Iterator[None]:
    """The database refuses to index anything: its documents table is gone a while."""
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE documents RENAME TO documents_offline"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE documents_offline RENAME TO documents"))


def indexed_count(engine: Engine, table: str = "documents") -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_rabbitmq_batch_is_requeued_until_the_database_takes_it(
    clean_db: Engine, settings: Settings, amqp_queue: str
) -> None:
    corpus = make_corpus(5, docs=4, versions=5, duplicates=3, malformed=0)
    record = add_source(
        clean_db,
        "outage",
        rabbit_config(amqp_queue, url=AMQP_URL.replace("guest:guest@", ""), url_env=None)
        | {"batch_size": 10},
    )
    publish(amqp_queue, corpus.messages)
    total = len(corpus.messages)

    with (
        capture_logs() as logged,
        consuming(record, context_for(record, settings, clean_db), consumers=2) as errors,
    ):
        with documents_table_gone(clean_db):
            wait_until(
                lambda: sum(e["event"] == "stream_batch_failed" for e in logged) >= 2,
                "the consumers to fail a batch twice",
            )
            # Backing off, a consumer holds no message: the batch is back in the queue.
            wait_until(lambda: queue_counts(amqp_queue)[0] == total, "the batch to be back")
            assert indexed_count(clean_db, "documents_offline") == 0
        # Every message taken, not only every document present: the last messages may
        # hold older versions of documents already indexed.
        wait_until(
            lambda: (
                indexed_count(clean_db) == len(corpus.final) and queue_counts(amqp_queue)[0] == 0
            ),
            "the index and the queue",
            timeout=60,
        )
    assert not errors
    # Stopped, the consumers have left nothing unacknowledged: all was acked after commit.
    assert queue_counts(amqp_queue) == (0, 0)
    assert_final_state(clean_db, corpus.final)


def test_category_profiles_shape_chunks(
    clean_db: Engine, settings: Settings, amqp_queue: str
) -> None:
    text = " ".join(_sentences(3, 6))
    posts_row = {
        "id": 1,
        "title": "Long post",
        "body": text,
        "author": "kim",
        "published_at": "2024-05-06",
    }
    repo_row = {"id": 1, "name": "Long readme", "readme": text, "stars": 9, "updated_at": BASE_MS}
    record = add_source(
        clean_db,
        "profiles",
        rabbit_config(amqp_queue, url=AMQP_URL.replace("guest:guest@", ""), url_env=None),
        profiles={"repositories": {"max_tokens": 32, "overlap_tokens": 0, "min_tokens": 0}},
    )
    publish(
        amqp_queue,
        [
            Message(envelope("c", "posts", BASE_MS, after=posts_row)),
            Message(envelope("r", "repositories", BASE_MS, after=repo_row)),
        ],
    )
    consume(record, context_for(record, settings, clean_db), idle_timeout=1.5)

    with clean_db.connect() as conn:
        docs = {
            r.doc_id: r
            for r in conn.execute(
                sa.text(
                    "SELECT doc_id, chunk_count, metadata, doc_date, title FROM documents "
                    "WHERE collection = :c"
                ),
                {"c": COLLECTION},
            )
        }
        longest = conn.execute(
            sa.text(
                "SELECT max(c.token_count) FROM chunks c JOIN documents d ON d.id = c.document_id "
                "WHERE d.doc_id = 'repositories:1'"
            )
        ).scalar_one()
    assert docs["posts:1"].chunk_count == 1
    assert docs["repositories:1"].chunk_count >= 4
    assert longest <= 32 + 8  # the passage, plus its title as context
    assert docs["posts:1"].metadata.items() >= {"author": "kim", "category": "posts"}.items()
    assert docs["posts:1"].doc_date == dt.date(2024, 5, 6)
    assert docs["posts:1"].title == "Long post"
    assert (
        docs["repositories:1"].metadata.items() >= {"stars": 9, "category": "repositories"}.items()
    )
    assert docs["repositories:1"].doc_date == dt.date(2024, 6, 1)


# -- Redis streams ---------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def redis_stream() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    name = f"ragline-test-cdc-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        client.delete(name, f"{name}.dlq")
        client.close()


@pytest.mark.slow
def test_redis_stream_claims_dead_consumers_and_acks_after_commit(
    clean_db: Engine,
    settings: Settings,
    redis_stream: str,
    webhook: Receiver,
) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    corpus = make_corpus(11, docs=10, versions=6, duplicates=10, malformed=10)
    client.xgroup_create(redis_stream, "indexer", id="0", mkstream=True)
    for n, message in enumerate(corpus.messages):
        if message.key is not None and n % 2:  # Debezium Server's compact form
            client.xadd(redis_stream, {message.key: message.body})
        else:
            client.xadd(redis_stream, {"key": message.key or b"", "value": message.body})
    client.xadd(redis_stream, {"a": b"1", "b": b"2"})  # neither form
    total = len(corpus.messages) + 1
    # A consumer takes the first entries and dies before acknowledging them.
    taken: Any = client.xreadgroup("indexer", "dead-consumer", {redis_stream: ">"}, count=40)
    assert len(taken[0][1]) == 40

    hooked = settings.model_copy(
        update={"notify_webhook_url": f"{webhook.url}/hook", "notify_environments": [settings.env]}
    )
    record = add_source(
        clean_db,
        "redis-cdc",
        {
            "transport": "redis",
            "url": REDIS_URL,
            "stream": redis_stream,
            "group": "indexer",
            "claim_idle_seconds": 1,
            "categories": CATEGORIES,
            "batch_size": 25,
            "batch_wait_seconds": 0.1,
            "report_every_seconds": 2,
        },
    )

    def ours_pending() -> int:
        consumers = client.xinfo_consumers(redis_stream, "indexer")
        return sum(c["pending"] for c in consumers if c["name"] != b"dead-consumer")

    def all_acked() -> bool:
        return int(client.xpending(redis_stream, "indexer")["pending"]) == 0

    with consuming(record, context_for(record, hooked, clean_db), consumers=2) as errors:
        with documents_table_gone(clean_db):
            wait_until(lambda: ours_pending() > 0, "a consumer to take a batch")
            time.sleep(2)  # it fails, backs off, and tries again: nothing is acknowledged
            assert client.xpending(redis_stream, "indexer")["pending"] >= ours_pending() > 0
            assert indexed_count(clean_db, "documents_offline") == 0
        wait_until(all_acked, "every entry to be acknowledged", timeout=60)
        wait_until(lambda: client.xlen(f"{redis_stream}.dlq") == 11, "the dead letters")
    assert not errors

    info = client.xinfo_groups(redis_stream)[0]
    assert info["entries-read"] == total
    assert info["pending"] == 0
    names = {c["name"] for c in client.xinfo_consumers(redis_stream, "indexer")}
    assert b"dead-consumer" not in names  # its entries were claimed, and it was forgotten
    assert_final_state(clean_db, corpus.final)

    dead: Any = client.xrange(f"{redis_stream}.dlq")
    by_body = {fields[b"body"]: fields for _, fields in dead}
    assert set(by_body) == set(corpus.malformed) | {b"a=1\nb=2"}
    for body, reason in corpus.malformed.items():
        assert reason in by_body[body][b"reason"].decode()
        assert by_body[body][b"stream"].decode() == redis_stream
    assert b"needs a 'value' field" in by_body[b"a=1\nb=2"][b"reason"]

    runs = stream_runs(clean_db, record)
    assert runs
    assert sum(r.failed for r in runs) == 11
    hooks = webhook.bodies("/hook")
    assert sorted(p["run"]["id"] for p in hooks) == [r.id for r in runs]
    assert {p["event"] for p in hooks} == {"sync_run.finished"}
    assert all(p["run"]["source_name"] == "redis-cdc" for p in hooks)
    client.close()


# -- configuration and decoding ----------------------------------------------------------


def test_configuration_is_checked() -> None:
    base: dict[str, Any] = {
        "transport": "rabbitmq",
        "url": "amqp://mq:5672//",
        "queue": "cdc",
        "categories": CATEGORIES,
    }
    config = KIND.validate(base)
    assert config.dead_letters == "cdc.dlq"
    assert config.batch_size == 200
    assert KIND.listable is False
    assert get_consumer("stream") is consume_stream
    redis_config = KIND.validate(
        {
            "transport": "redis",
            "url_env": "CDC_URL",
            "stream": "s",
            "group": "g",
            "categories": CATEGORIES,
        }
    )
    assert redis_config.dead_letters == "s.dlq"
    refused = [
        base | {"url": "amqp://app:hunter2@mq:5672//"},  # a password in clear
        base | {"queue": None},
        base | {"stream": "s"},
        base | {"url_env": "CDC_URL"},  # both
        base | {"categories": {}},
        base | {"categories": {"posts": {"text_fields": []}}},
        base | {"categories": {"posts": {"text_fields": ["body"], "colour": "red"}}},
        base | {"batch_size": 0},
        base | {"prefetch": 10},
        {**base, "transport": "kafka"},
        {"transport": "redis", "url": "redis://r", "stream": "s", "categories": CATEGORIES},
    ]
    for config_dict in refused:
        with pytest.raises(ConfigurationError):
            KIND.validate(config_dict)


@pytest.fixture
def source(settings: Settings, engine: Engine) -> StreamSource:
    config = KIND.validate(
        {
            "transport": "redis",
            "url": REDIS_URL,
            "stream": "s",
            "group": "g",
            "categories": CATEGORIES | {"pages": {"text_fields": ["html"]}},
        }
    )
    context = SourceContext(
        name="stream:test",
        source_id=uuid.uuid4(),
        tenant="default",
        collection=COLLECTION,
        settings=settings,
        engine=engine,
        profiles=Profiles.parse({"posts": {"max_tokens": 50}}),
        allowance=local_allowance(),
    )
    return StreamSource(config, context)


def test_decoding(source: StreamSource) -> None:
    post = {
        "id": 5,
        "title": "Hello",
        "body": "First  line.\r\n\r\nSecond.",
        "author": "kim",
        "published_at": 19_800,  # days, as Debezium encodes a DATE
    }
    change = source.decode(
        envelope("c", "posts", BASE_MS, after=post, wrapped=True, ts_us=BASE_MS * 1000 + 250)
    )
    assert change is not None
    assert change.item is not None
    assert change.doc_id == "posts:5"
    assert change.modified == dt.datetime(2024, 6, 1, 0, 0, tzinfo=dt.UTC) + dt.timedelta(
        microseconds=250
    )
    assert json.loads(change.content) == {
        "title": "Hello",
        "text": "First line.\n\nSecond.",
        "date": "2024-03-18",
    }
    assert change.item.profile is not None
    assert change.item.profile.max_tokens == 50
    assert change.item.metadata == {"author": "kim", "category": "posts"}

    page = {
        "id": "p1",
        "html": "<nav>Menu</nav><h1>Guide</h1><p>Use the <b>wiper</b> &amp; rinse.</p>",
    }
    change = source.decode(envelope("u", "pages", BASE_MS, after=page))
    assert change is not None
    assert change.item is not None
    assert change.item.profile is None
    assert json.loads(change.content)["text"] == "Guide\n\nUse the wiper & rinse."

    deletion = source.decode(envelope("d", "articles", BASE_MS), key=b'{"payload": {"id": "a-1"}}')
    assert deletion is not None
    assert deletion.item is None
    assert deletion.doc_id == "articles:a-1"
    assert source.decode(b"null") is None  # a tombstone
    assert source.decode(b'{"schema": {}, "payload": null}') is None

    versions = [
        source.decode(envelope("u", "posts", BASE_MS + n, after=post | {"body": f"v{n}"}))
        for n in (2, 1)
    ] + [source.decode(envelope("d", "posts", BASE_MS + 3, before=post))]
    batch, changes = source.batch([v for v in versions if v is not None])
    assert [i.doc_id for i in changes.items] == ["posts:5", "posts:5"]
    assert changes.deleted == {"posts:5": at(BASE_MS + 3)}
    assert json.loads(batch.read(changes.items[1]))["text"] == "v1"

    with pytest.raises(MalformedEvent, match="unknown category"):
        source.decode(envelope("c", "videos", BASE_MS, after=post))


def test_the_backlog_counts_the_events_waiting_for_the_consumers(
    clean_db: Engine,
    settings: Settings,
    amqp_queue: str,
    redis_stream: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert KIND.backlog is not None
    monkeypatch.setenv(CDC_URL_ENV, AMQP_URL)
    rabbit = add_source(clean_db, "rabbit-backlog", rabbit_config(amqp_queue))
    messages = make_corpus(3, docs=2, versions=2, duplicates=0, malformed=0).messages
    publish(amqp_queue, messages)
    waiting = KIND.backlog(KIND.validate(rabbit.config), context_for(rabbit, settings, clean_db))
    assert waiting == len(messages)

    client = redis.Redis.from_url(REDIS_URL)
    for n in range(3):
        client.xadd(redis_stream, {"value": b"{}", "n": str(n).encode()})
    client.xgroup_create(redis_stream, "indexer", id="0")
    client.xreadgroup("indexer", "a-consumer", {redis_stream: ">"}, count=1)
    client.close()
    config = {
        "transport": "redis",
        "url": REDIS_URL,
        "stream": redis_stream,
        "group": "indexer",
        "categories": CATEGORIES,
    }
    stream = add_source(clean_db, "redis-backlog", config)
    # Two entries not yet delivered to the group, one delivered and not acknowledged.
    assert KIND.backlog(KIND.validate(stream.config), context_for(stream, settings, clean_db)) == 3
