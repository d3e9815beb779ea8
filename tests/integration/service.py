"""Helpers for tests of the HTTP service: a real uvicorn server on a free port (in a
thread, or as a `ragline serve` process), API keys, and waiting for jobs."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from sqlalchemy.engine import Engine

from ragline.api.app import create_app
from ragline.auth import Role, create_key
from ragline.config import Settings

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def serve_in_thread(settings: Settings) -> Iterator[str]:
    """``create_app(settings)`` served by uvicorn on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=60, what="the server to start")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=60, what="readiness")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def start_process(
    args: list[str], env: dict[str, str], *, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """A ragline command in its own process group (so that it can be killed whole),
    its stderr (the logs) written to ``log``."""
    with open(log or os.devnull, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "ragline", *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )


@dataclass
class Client:
    """An httpx client for one API key."""

    url: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, headers=self.headers, timeout=30, **kwargs)

    def delete(self, path: str) -> httpx.Response:
        return httpx.delete(self.url + path, headers=self.headers, timeout=30)

    def upload(self, name: str, data: bytes, content_type: str, **fields: str) -> httpx.Response:
        return self.post("/v1/documents", files={"file": (name, data, content_type)}, data=fields)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def wait_job(self, job_id: str, *, timeout: float = 120) -> dict[str, Any]:
        """The job once it has finished (succeeded or failed)."""

        def finished() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in ("succeeded", "failed") else None

        return wait_for(finished, timeout=timeout, what=f"job {job_id}")

    def search(self, query: str, **body: Any) -> list[dict[str, Any]]:
        response = self.post("/v1/search", json={"query": query, **body})
        assert response.status_code == 200, response.text
        hits: list[dict[str, Any]] = response.json()["hits"]
        return hits


def start_long_job(client: Client) -> dict[str, str]:
    """Upload a document that takes several seconds to index (text no cache has seen)
    and return its ids once its job has been running for a moment."""
    text = word_salad(30000, seed=uuid.uuid4().int)
    ids: dict[str, str] = client.upload("log.md", text.encode(), "text/markdown").json()
    wait_for(
        lambda: client.job(ids["job_id"])["status"] == "running",
        timeout=120,
        what="the job to start",
    )
    time.sleep(1.5)
    assert client.job(ids["job_id"])["status"] == "running", "the job ended too soon"
    return ids


def client_for(url: str, engine: Engine, tenant: str, role: Role = "writer") -> Client:
    return Client(url, create_key(engine, tenant=tenant, role=role).secret)


def word_salad(words: int, seed: int) -> str:
    """Distinct text (so that no chunk is in the embedding cache) of about ``words``
    words, in paragraphs under headings."""
    rng = random.Random(seed)
    vocab = [
        *("river", "estuary", "sonde", "logger", "oxygen", "nitrate", "turbidity", "tide"),
        *("conductivity", "salinity", "sensor", "cable", "bracket", "modem", "battery"),
        *("panel", "firmware", "alarm", "wiper", "calibration", "sample", "depth"),
        *("pressure", "temperature", "station", "telemetry", "backup", "storage", "report"),
    ]
    parts = [f"# Field log {seed}"]
    for section in range(words // 400 + 1):
        parts.append(f"## Section {section}")
        for _ in range(4):
            sentence = " ".join(rng.choice(vocab) for _ in range(100))
            parts.append(f"{sentence.capitalize()} {rng.randrange(10**9)}.")
    return "\n\n".join(parts) + "\n"
