"""What a request may cost before any work is done for it, as plain ASGI middleware
that sits in front of authentication and of FastAPI's body parsing:

- a body larger than its limit gets 413: at once when ``Content-Length`` says so,
  and otherwise (chunked bodies) as soon as the bytes read pass the limit, having
  read no more than the limit and one chunk. The limit is
  ``RAGLINE_MAX_UPLOAD_BYTES`` (plus the multipart envelope) for ``POST
  /v1/documents`` and ``RAGLINE_MAX_REQUEST_BYTES`` for every other route;
- a request with a body to ``/v1`` without an ``Authorization`` header gets 401
  before a byte of it is read, when keys are required;
- a JSON body (read whole, within its limit) that is nested too deep, holds a
  number that is not finite or text that is not valid Unicode gets 422
  (``ragline.api.jsonbody``).

    app.add_middleware(
        BodyLimitMiddleware,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        auth_required=settings.auth_required,
    )
"""

from __future__ import annotations

import json
from email.message import Message as MimeHeader

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragline.api.jsonbody import refusal

# The multipart envelope around an uploaded file adds a little to the file itself.
MULTIPART_ALLOWANCE = 64 * 1024
UPLOAD_ROUTE = ("POST", "/v1/documents")


class BodyTooLarge(Exception):
    """Raised by the wrapped ``receive`` once a body passes its limit."""


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_request_bytes: int,
        max_upload_bytes: int,
        auth_required: bool,
    ) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes
        self.auth_required = auth_required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        upload = (scope["method"], scope["path"]) == UPLOAD_ROUTE
        limit = self.max_upload_bytes + MULTIPART_ALLOWANCE if upload else self.max_request_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, self._too_large(upload), close=True)
            return
        has_body = (declared.isdigit() and int(declared) > 0) or b"transfer-encoding" in headers
        if not has_body:
            await self.app(scope, receive, send)
            return
        if self.auth_required and _needs_key(scope["path"]) and b"authorization" not in headers:
            detail = "missing API key: send it as 'Authorization: Bearer <key>'"
            await _answer(send, 401, detail, close=True, authenticate=True)
            return
        if not upload and _is_json(headers.get(b"content-type")):
            await self._checked_json(scope, receive, send, limit)
            return
        await self._bounded(scope, receive, send, limit, upload)

    def _too_large(self, upload: bool) -> str:
        if upload:
            return (
                f"the upload is over the limit of {self.max_upload_bytes:,} bytes "
                "(RAGLINE_MAX_UPLOAD_BYTES); split the file or ask the operator to raise it"
            )
        return (
            f"the request body is over the limit of {self.max_request_bytes:,} bytes "
            "(RAGLINE_MAX_REQUEST_BYTES); send less at once"
        )

    async def _checked_json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read the JSON body whole (no further than ``limit``), check it, and hand the
        same bytes to the application."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, self._too_large(False), close=True)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = refusal(body)
        if problem is not None:
            await _answer(send, 422, [{"type": "json_invalid", "loc": ["body"], "msg": problem}])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _bounded(
        self, scope: Scope, receive: Receive, send: Send, limit: int, upload: bool
    ) -> None:
        """Run the application with a ``receive`` that stops at ``limit`` bytes; answer
        413 in its place once the body has passed it."""
        size = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal size, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the application makes of the error, the answer is 413
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _answer(send, 413, self._too_large(upload), close=True)


def _needs_key(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI would parse the body as JSON (it does without a content type)."""
    if not content_type:
        return True
    header = MimeHeader()
    header["content-type"] = content_type.decode("latin-1")
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _answer(
    send: Send,
    status: int,
    detail: object,
    *,
    close: bool = False,
    authenticate: bool = False,
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:  # the rest of the body is never read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    if authenticate:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
