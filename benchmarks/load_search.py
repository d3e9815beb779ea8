"""Load test of POST /v1/search: concurrent clients for a fixed time.

    .venv/bin/python benchmarks/load_search.py [--clients 1,8] [--seconds 60] [--mode hybrid]
    .venv/bin/python benchmarks/load_search.py --home ~/.local/share/ragline --tenant default

Without --home it starts from an empty RAGLINE_HOME, uploads the sample corpus through
the API and waits for its jobs. It then runs `ragline serve` in its own process and
drives it from this one, for each number of --clients in turn, with that many
concurrent clients (asyncio + httpx), each sending the next query of the list as soon
as its previous answer arrives. Prints
throughput, latency percentiles and errors, and writes
benchmarks/results/load_search.json. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from core import QUERIES, percentile  # benchmarks/core.py

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ragline(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ragline", *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"ragline {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server at {url} did not become ready in {timeout} s")


def server_search_seconds(url: str) -> tuple[float, float]:
    """(sum, count) of the server's own /v1/search durations, from /metrics."""
    total = count = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("ragline_http_request_duration_seconds") and '"/v1/search"' in line:
            name, value = line.rsplit(" ", 1)
            if name.startswith("ragline_http_request_duration_seconds_sum"):
                total += float(value)
            elif name.startswith("ragline_http_request_duration_seconds_count"):
                count += float(value)
    return total, count


def upload_corpus(url: str, key: str, corpus: Path) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    jobs = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        with path.open("rb") as data:
            response = httpx.post(
                f"{url}/v1/documents",
                headers=headers,
                files={"file": (path.name, data, "application/octet-stream")},
                data={"collection": "samples"},
                timeout=60,
            )
        response.raise_for_status()
        jobs.append(response.json()["job_id"])
    for job_id in jobs:
        while True:
            job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers, timeout=30).json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.25)
    return len(jobs)


async def drive(
    url: str, key: str, *, clients: int, seconds: float, mode: str, k: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def one_client(offset: int) -> None:
            n = offset
            while time.monotonic() < stop_at:
                query = QUERIES[n % len(QUERIES)]
                n += clients
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/v1/search", json={"query": query, "k": k, "mode": mode}, timeout=30
                    )
                    elapsed = time.perf_counter() - started
                    if response.status_code == 200 and response.json()["hits"]:
                        latencies.append(elapsed)
                    else:
                        reason = f"HTTP {response.status_code}"
                        errors[reason] = errors.get(reason, 0) + 1
                except httpx.HTTPError as e:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.monotonic() - started
    return {
        "requests": len(latencies) + sum(errors.values()),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", default="1,8", help="Comma-separated numbers of concurrent clients."
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--mode", choices=("dense", "lexical", "hybrid"), default="hybrid")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--home", type=Path, help="An existing RAGLINE_HOME to search.")
    parser.add_argument("--tenant", default="bench", help="Tenant searched (with --home).")
    parser.add_argument("--corpus", type=Path, default=ROOT / "samples" / "corpus")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/load_search.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragline-load-") as scratch:
        home = args.home or Path(scratch)
        env = {
            **os.environ,
            "RAGLINE_HOME": str(home),
            # The load test measures search, not the rate limiter's refusals, and every
            # query's embedding (its short list of queries would all be cached).
            "RAGLINE_RATE_LIMIT_PER_MINUTE": "100000000",
            "RAGLINE_RATE_LIMIT_BURST": "100000",
            "RAGLINE_QUERY_CACHE_SIZE": "0",
        }
        env.pop("RAGLINE_DATABASE_URL", None)
        tenant = args.tenant if args.home else "bench"
        key = json.loads(
            ragline("keys", "create", "--tenant", tenant, "--role", "writer", "--json", env=env)
        )["key"]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "ragline", "serve", "--port", str(port)],
            env=env,
            start_new_session=True,
        )
        try:
            wait_ready(url)
            uploaded = 0 if args.home else upload_corpus(url, key, args.corpus)
            status = json.loads(ragline("status", "--json", env={**env, "RAGLINE_TENANT": tenant}))
            # Warm-up: the first queries pay for connections and lazy initialisation.
            asyncio.run(drive(url, key, clients=2, seconds=3, mode=args.mode, k=args.k))
            runs = []
            for clients in (int(n) for n in args.clients.split(",")):
                before = server_search_seconds(url)
                figures = asyncio.run(
                    drive(url, key, clients=clients, seconds=args.seconds, mode=args.mode, k=args.k)
                )
                after = server_search_seconds(url)
                served = (after[0] - before[0]) / max(1.0, after[1] - before[1])
                # The server's own time per search (from its histogram): the rest of
                # the latency is the client, the connection and waiting for a thread.
                runs.append(
                    {"clients": clients, **figures, "server_mean_ms": round(served * 1000, 1)}
                )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)

    result = {
        "benchmark": "POST /v1/search under concurrent load",
        "mode": args.mode,
        "k": args.k,
        "corpus": {
            "uploaded_documents": uploaded,
            "chunks": status["chunks"],
            "tenant": tenant,
        },
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    failed = sum(sum(run["errors"].values()) for run in runs)
    if failed:
        raise SystemExit(f"{failed} requests failed: {[run['errors'] for run in runs]}")


if __name__ == "__main__":
    main()
