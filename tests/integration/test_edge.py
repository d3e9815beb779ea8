"""The HTTP edge: what a request may cost before its key is checked (body limits,
chunked bodies, throttled key failures, per-route costs), odd JSON, bounded metrics
labels, safe request ids and docs served without a CDN, against a real uvicorn server
on a real socket."""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragline.api.app import create_app
from ragline.config import Settings
from ragline.ratelimit import PostgresRateLimiter, RedisRateLimiter
from tests.integration.service import Client, client_for, free_port, wait_for

MAX_REQUEST = 64 * 1024
MAX_UPLOAD = 1024 * 1024
UPLOAD_LIMIT = MAX_UPLOAD + 64 * 1024  # the multipart envelope's allowance
CHUNK = 64 * 1024
# uvicorn hands the application what one socket read brought (asyncio reads up to 256
# KiB at a time) on top of what it buffered (it stops reading at 64 KiB): a body is
# refused within that much past its limit.
READ_SLACK = 256 * 1024 + 64 * 1024
GIGABYTE = 1024**3
METRICS_TOKEN = "scrape-secret"


class ReadCounter:
    """The application as uvicorn sees it, counting the body bytes it reads."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@dataclass
class Server:
    url: str
    port: int
    counter: ReadCounter


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[Server]:
    test_settings = settings.model_copy(
        update={
            "max_request_bytes": MAX_REQUEST,
            "max_upload_bytes": MAX_UPLOAD,
            "auth_failures_burst": 3,
            "auth_failures_per_minute": 0.01,
            "rate_limit_burst": 12,
            "rate_limit_per_minute": 0.01,
            "metrics_token": SecretStr(METRICS_TOKEN),
        }
    )
    counter = ReadCounter(create_app(test_settings))
    port = free_port()
    config = uvicorn.Config(
        counter, host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    wait_for(lambda: uv.started, timeout=60, what="the server to start")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=60, what="readiness")
    try:
        yield Server(url, port, counter)
    finally:
        uv.should_exit = True
        thread.join(30)


@pytest.fixture
def writer(server: Server, clean_db: Engine) -> Client:
    server.counter.read = 0
    return client_for(server.url, clean_db, "acme", "writer")


@dataclass
class Sent:
    status: int | None  # None: the connection was reset before the answer could be read
    sent: int  # body bytes the client managed to send
    body: bytes


def send_chunked(port: int, path: str, headers: dict[str, str], first: bytes, total: int) -> Sent:
    """POST ``first`` then filler, chunk by chunk, up to ``total`` bytes, stopping as
    soon as the server answers or closes."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
    sock.settimeout(10)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    start = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    sock.sendall(f"{start}{head}\r\n".encode())
    filler = b"a" * CHUNK
    sent = 0
    piece = first
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
            piece = filler
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and _complete(data):
                break
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    match = re.match(rb"HTTP/1\.1 (\d{3})", data)
    return Sent(int(match.group(1)) if match else None, sent, data.partition(b"\r\n\r\n")[2])


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: (\d+)", head)
    return length is not None and len(body) >= int(length.group(1))


MULTIPART_START = (
    b'--edge\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n"
)
UPLOAD_HEADERS = {"Content-Type": "multipart/form-data; boundary=edge"}


def test_a_gigabyte_chunked_upload_without_a_key_is_refused_unread(server: Server) -> None:
    server.counter.read = 0
    result = send_chunked(server.port, "/v1/documents", UPLOAD_HEADERS, MULTIPART_START, GIGABYTE)
    print(f"no key: client sent {result.sent:,} bytes, the app read {server.counter.read:,}")
    assert server.counter.read == 0
    assert result.sent < 64 * CHUNK  # what the sockets' buffers hold, not a gigabyte
    assert result.status in (401, None)
    if result.status == 401:
        assert b"missing API key" in result.body


@pytest.mark.parametrize("key", ["valid", "invalid"])
def test_a_chunked_upload_over_the_limit_stops_at_the_limit(
    server: Server, writer: Client, key: str
) -> None:
    secret = writer.key if key == "valid" else "rl_not-a-key"
    headers = {**UPLOAD_HEADERS, "Authorization": f"Bearer {secret}"}
    result = send_chunked(server.port, "/v1/documents", headers, MULTIPART_START, GIGABYTE)
    print(f"{key} key: client sent {result.sent:,} bytes, the app read {server.counter.read:,}")
    assert UPLOAD_LIMIT < server.counter.read <= UPLOAD_LIMIT + READ_SLACK
    assert result.status in (413, None)
    if result.status == 413:
        assert b"RAGLINE_MAX_UPLOAD_BYTES" in result.body


def test_json_bodies_are_bounded_while_read_and_before_the_key(
    server: Server, writer: Client
) -> None:
    # Declared too large: refused before a byte is read.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 157286400\r\n\r\n{"query": "'
        )
        answer = b""
        while not _complete(answer) and (more := sock.recv(65536)):
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"RAGLINE_MAX_REQUEST_BYTES" in answer
    assert server.counter.read == 0

    # Chunked, with a valid key: read up to the limit, then 413.
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {writer.key}"}
    result = send_chunked(server.port, "/v1/search", headers, b'{"query": "', GIGABYTE)
    print(f"JSON: client sent {result.sent:,} bytes, the app read {server.counter.read:,}")
    assert server.counter.read <= MAX_REQUEST + READ_SLACK
    assert result.status in (413, None)

    # A body without a key: 401 at once, nothing read, whatever its size.
    server.counter.read = 0
    answer_401 = httpx.post(f"{server.url}/v1/search", json={"query": "x" * 1000})
    assert answer_401.status_code == 401
    assert answer_401.headers["www-authenticate"] == "Bearer"
    assert server.counter.read == 0


def test_odd_json_answers_422_and_never_500(server: Server, writer: Client) -> None:
    bodies = {
        "nan": b'{"query": NaN}',
        "infinity": b'{"query": "pump", "k": -Infinity}',
        "overflow": b'{"query": "pump", "k": 1e400}',
        "surrogate": b'{"query": "\\ud800"}',
        "surrogate key": b'{"query": "pump", "filters": {"\\udfff": 1}}',
        "deep": b'{"query": "pump", "filters": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    }
    answers = {}
    for name, body in bodies.items():
        response = httpx.post(
            f"{server.url}/v1/search",
            content=body,
            headers={**writer.headers, "Content-Type": "application/json"},
        )
        answers[name] = (response.status_code, response.json()["detail"][0]["msg"])
    assert {name: status for name, (status, _) in answers.items()} == dict.fromkeys(bodies, 422)
    assert "finite number" in answers["nan"][1]
    assert "too large" in answers["overflow"][1]
    assert "surrogate" in answers["surrogate key"][1]
    assert "64 levels" in answers["deep"][1]

    # A valid pair of surrogates is one character, and fine.
    fine = writer.post("/v1/search", json={"query": "pump \U0001f600"})
    assert fine.status_code == 200, fine.text


def test_the_depth_check_is_cheap_on_the_largest_body(server: Server, writer: Client) -> None:
    body = b'{"query": "' + b"[" * (MAX_REQUEST - 20) + b'"}'  # brackets inside a string
    started = time.perf_counter()
    response = httpx.post(
        f"{server.url}/v1/search",
        content=body,
        headers={**writer.headers, "Content-Type": "application/json"},
    )
    print(f"64 KiB of brackets in a string: {time.perf_counter() - started:.3f} s")
    assert response.status_code in (200, 422)  # 422: the query is too long, not too deep
    assert "levels" not in response.text


def test_invalid_keys_are_throttled_per_client_address(server: Server, writer: Client) -> None:
    def client(address: str) -> httpx.Client:
        return httpx.Client(
            base_url=server.url, transport=httpx.HTTPTransport(local_address=address)
        )

    with client("127.0.0.2") as attacker, client("127.0.0.3") as neighbour:
        bad = {"Authorization": "Bearer rl_guessed"}
        statuses = [attacker.get("/v1/jobs", headers=bad).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        throttled = attacker.get("/v1/jobs", headers=bad)
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert attacker.get("/v1/jobs").status_code == 429  # no key at all
        # A valid key is not held back by the failures, even from the same address.
        assert attacker.get("/v1/jobs", headers=writer.headers).status_code == 200
        # Another address has its own bucket.
        assert neighbour.get("/v1/jobs", headers=bad).status_code == 401


def test_costly_routes_take_more_of_the_rate_limit(server: Server, writer: Client) -> None:
    # A bucket of 12 tokens: an upload takes 10, a read one.
    assert writer.upload("note.md", b"# Pumps\n\nCheck the seals.\n", "text/markdown").is_success
    assert [writer.get("/v1/jobs").status_code for _ in range(3)] == [200, 200, 429]
    refused = writer.get("/v1/jobs")
    assert "costs 1" in refused.json()["detail"]


@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_the_rate_limiter_takes_the_cost_asked(
    clean_db: Engine, redis_url: str, store: str
) -> None:
    limiter = (
        PostgresRateLimiter(clean_db, per_minute=0.01, burst=10)
        if store == "postgres"
        else RedisRateLimiter(redis_url, per_minute=0.01, burst=10)
    )
    key = f"cost-test-{time.time_ns()}"
    assert limiter.take(key, cost=5).remaining == 5
    assert limiter.take(key, cost=4).remaining == 1
    refused = limiter.take(key, cost=2)
    assert (refused.allowed, refused.remaining) == (False, 1)
    assert limiter.take(key).allowed  # the refused request took nothing
    assert limiter.take(f"{key}-big", cost=50).allowed  # never dearer than a full bucket


def test_metrics_labels_are_bounded_and_metrics_need_the_token(
    server: Server, writer: Client
) -> None:
    for method in ("FOOBAR", "BREW", "PROPFIND"):
        httpx.request(method, f"{server.url}/v1/search", headers=writer.headers)
    httpx.get(f"{server.url}/no/such/{time.time_ns()}")
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    scraped = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert scraped.status_code == 200
    methods = set(
        re.findall(r'ragline_http_request_duration_seconds_count\{method="([^"]*)"', scraped.text)
    )
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    routes = set(re.findall(r'route="([^"]*)"', scraped.text))
    assert "unmatched" in routes
    assert not any(route.startswith("/no/such") for route in routes)


def test_request_ids_with_control_characters_are_replaced(server: Server) -> None:
    kept = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "trace-42:a.b_c"})
    assert kept.headers["x-request-id"] == "trace-42:a.b_c"
    for given in (b"\x9b31mred", b"id with spaces", b"x" * 200):
        answer = httpx.get(f"{server.url}/healthz", headers={b"X-Request-ID": given})
        assert answer.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), given


def test_docs_load_nothing_from_another_host(server: Server) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    assert not re.findall(r"https?://", page.text), "the page names another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(asset.endswith(".js") for asset in assets)
    assert any(asset.endswith(".css") for asset in assets)
    for asset in assets:
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    assert httpx.get(f"{server.url}/openapi.json").status_code == 200
    assert json.loads(httpx.get(f"{server.url}/openapi.json").text)["info"]["title"] == "ragline"
