"""Throughput of a change-event stream: Debezium envelopes through RabbitMQ, consumed
and indexed by 1 and by 3 consumers.

    .venv/bin/python benchmarks/stream_consume.py [--docs 300] [--versions 10] \
        [--consumers 1,3] [--amqp URL (default: RAGLINE_TEST_AMQP_URL, see tests/services.py)]

Each document is a SciFact abstract (../shared/benchmarks/scifact) edited
``--versions`` times (each version appends a revision note, so every version has
text of its own), published in time order with 3% of the events late (after a newer
version of their document). ragline runs on the embedded default from an empty
RAGLINE_HOME, and each run starts with an empty embedding cache. The figure is
events consumed per second: the queue is full when the consumers start, and the idle
wait after the last message is not counted. The index is checked to hold exactly the
last versions.
Writes benchmarks/results/stream_consume.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl"
BASE_MS = 1_750_000_000_000
# Consumers stop after this long without a message; it is not counted.
IDLE = 2.0


def events(docs: int, versions: int, seed: int = 7) -> tuple[list[bytes], dict[str, str]]:
    """The messages in publishing order, and each document's last text."""
    rng = random.Random(seed)
    abstracts = []
    with CORPUS.open() as corpus:
        for line in corpus:
            record = json.loads(line)
            if record["text"].strip():
                abstracts.append((record["title"], record["text"]))
            if len(abstracts) == docs:
                break
    timed: list[tuple[int, bytes]] = []
    final: dict[str, str] = {}
    for n, (title, text) in enumerate(abstracts):
        ts = BASE_MS + rng.randint(0, 60_000)
        before = None
        for version in range(versions):
            ts += rng.randint(1, 5_000)
            body = f"{text} Revision {version} of this summary."
            after = {"id": n, "title": title, "body": body}
            envelope = {
                "op": "c" if before is None else "u",
                "before": before,
                "after": after,
                "source": {"ts_ms": ts, "table": "posts", "db": "blog"},
                "ts_ms": ts,
            }
            timed.append((ts, json.dumps(envelope).encode()))
            before = after
            final[f"posts:{n}"] = body
    timed.sort()
    placed = [
        (index + (rng.randint(20, 200) if rng.random() < 0.03 else 0), body)
        for index, (_, body) in enumerate(timed)
    ]
    placed.sort(key=lambda p: p[0])
    return [body for _, body in placed], final


def run(
    engine: Any,
    settings: Any,
    amqp: str,
    messages: list[bytes],
    final: dict[str, str],
    consumers: int,
) -> dict[str, Any]:
    """Publish ``messages`` to a new queue, consume them with ``consumers`` consumers
    into a collection of their own, and check the index against ``final``."""
    import sqlalchemy as sa
    from kombu import Connection, Producer

    from ragline.sources.build import build_context
    from ragline.sources.consumers.stream import consume
    from ragline.sources.registry import ConsumeOptions
    from ragline.sources.store import SourceSpec, create_source

    queue = f"ragline-bench-{uuid.uuid4().hex[:8]}"
    collection = f"bench-{consumers}"
    with Connection(amqp) as conn:
        conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        producer = Producer(conn.default_channel)
        for body in messages:
            producer.publish(body, exchange="", routing_key=queue, delivery_mode=2)
    posts = {"title_fields": ["title"], "text_fields": ["body"]}
    with engine.begin() as conn:
        record = create_source(
            conn,
            tenant=settings.tenant,
            spec=SourceSpec(
                name=collection,
                kind="stream",
                collection=collection,
                config={
                    "transport": "rabbitmq",
                    "url_env": "RAGLINE_BENCH_AMQP_URL",
                    "queue": queue,
                    "categories": {"posts": posts},
                },
            ),
        )
    _, config, context = build_context(record, settings, engine)
    with engine.begin() as conn:  # every run embeds what it indexes
        conn.execute(sa.text("TRUNCATE embedding_cache"))
    started = time.perf_counter()
    consume(config, context, ConsumeOptions(consumers=consumers, idle_timeout=IDLE))
    seconds = time.perf_counter() - started - IDLE
    with engine.connect() as conn:
        indexed = dict(
            conn.execute(
                sa.text(
                    "SELECT d.doc_id, string_agg(c.text, ' ' ORDER BY c.ordinal) "
                    "FROM documents d JOIN chunks c ON c.document_id = d.id "
                    "WHERE d.collection = :c AND d.status = 'active' GROUP BY d.doc_id"
                ),
                {"c": collection},
            ).all()
        )
        embedded, calls = conn.execute(
            sa.text(
                "SELECT coalesce(sum(embedded), 0), coalesce(sum(embedding_calls), 0) "
                "FROM sync_runs WHERE collection = :c"
            ),
            {"c": collection},
        ).one()
    exact = set(indexed) == set(final) and all(
        final[doc].rsplit(" Revision ", 1)[-1] in indexed[doc] for doc in final
    )
    with Connection(amqp) as conn:
        conn.default_channel.queue_delete(queue=queue)
        conn.default_channel.queue_delete(queue=f"{queue}.dlq")
    row = {
        "consumers": consumers,
        "events": len(messages),
        "seconds": round(seconds, 2),
        "events_per_second": round(len(messages) / seconds, 1),
        "chunks_embedded": int(embedded),
        "embedding_calls": int(calls),
        "final_state_exact": exact,
    }
    print(
        f"{consumers} consumer(s): {len(messages)} events in {seconds:.1f} s = "
        f"{row['events_per_second']} events/s; {row['chunks_embedded']} chunks embedded "
        f"in {row['embedding_calls']} calls; final state exact: {exact}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--consumers", default="1,3")
    parser.add_argument("--amqp", default=None)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "stream_consume.json"
    )
    args = parser.parse_args()
    if args.amqp is None:  # the test machine's broker, in a virtual host of its own
        sys.path.insert(0, str(ROOT))
        from tests import services

        args.amqp = services.amqp_vhost_url("stream_consume")

    os.environ["RAGLINE_HOME"] = tempfile.mkdtemp(prefix="ragline-bench-")
    os.environ["RAGLINE_BENCH_AMQP_URL"] = args.amqp
    from ragline.config import get_settings
    from ragline.db.engine import get_engine

    settings = get_settings()
    engine = get_engine(settings)
    messages, final = events(args.docs, args.versions)
    results = [
        run(engine, settings, args.amqp, messages, final, consumers)
        for consumers in [int(c) for c in args.consumers.split(",")]
    ]
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.machine(),
            "python": platform.python_version(),
        },
        "documents": args.docs,
        "versions": args.versions,
        "corpus": "SciFact abstracts, each edited --versions times",
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
