"""Per-request observation as plain ASGI middleware: a request id, bound to the logs
and echoed in ``X-Request-ID``; the route's latency histogram; one log line per
request.

    app.add_middleware(ObserveMiddleware)    # added last: it sees every answer

The client's ``X-Request-ID`` is kept only when it is 1 to 128 of ``A-Z a-z 0-9 . _
: -`` (a new id replaces anything else, so no control character reaches a log). The
histogram's labels are bounded whatever clients send: methods outside HTTP's own
are counted as ``other``, and paths that match no route as ``unmatched``.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: streamed responses pass
through untouched, and a client's disconnect reaches the endpoint."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragline.logs import get_logger
from ragline.metrics import HTTP_REQUEST_SECONDS

log = get_logger(__name__)

REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_of(headers: dict[bytes, bytes]) -> str:
    """The client's request id when it is safe to log and echo, else a new one."""
    given = headers.get(b"x-request-id", b"")
    return given.decode("ascii") if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(dict(scope["headers"]))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = method_label(scope["method"])
            HTTP_REQUEST_SECONDS.labels(method, route, str(status)).observe(elapsed)
            log.info(
                "request",
                method=method,
                route=route,
                status=status,
                ms=round(elapsed * 1000, 2),
                tenant=scope.get("state", {}).get("tenant"),
            )
