"""Per-request observation as plain ASGI middleware: a request id, bound to the logs
and echoed in ``X-Request-ID``; the route's latency histogram; one log line per
request; and early refusal of uploads whose declared size is over the limit.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: streamed responses pass
through untouched, and a client's disconnect reaches the endpoint."""

from __future__ import annotations

import json
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragline.logs import get_logger
from ragline.metrics import HTTP_REQUEST_SECONDS

log = get_logger(__name__)

# The multipart envelope around an uploaded file adds a little to the file itself.
_MULTIPART_ALLOWANCE = 64 * 1024


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, *, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:200] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if self._upload_too_big(scope, headers):
            await self._refuse_upload(send, request_id)
            return
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
            HTTP_REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                ms=round(elapsed * 1000, 2),
                tenant=scope.get("state", {}).get("tenant"),
            )

    def _upload_too_big(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        if scope["method"] != "POST" or scope["path"] != "/v1/documents":
            return False
        declared = headers.get(b"content-length", b"")
        return declared.isdigit() and int(declared) > self.max_upload_bytes + _MULTIPART_ALLOWANCE

    async def _refuse_upload(self, send: Send, request_id: str) -> None:
        body = json.dumps(
            {
                "detail": f"the upload is over the limit of {self.max_upload_bytes:,} bytes "
                "(RAGLINE_MAX_UPLOAD_BYTES)"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
