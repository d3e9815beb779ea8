"""Errors as HTTP answers: the one place a ragline error becomes a status.

The most specific class listed wins; an error of none of these classes is a 500.
``Unavailable`` errors (503) say when to try again.

    install(app)      # in create_app, once

A request that fails validation gets 422 with FastAPI's list of errors, each echoing
its input only when that input can be written back as JSON. Any other exception is a
500 whose answer says nothing of its cause but the request id to look for in the log.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ragline.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    EmbeddingModelMismatch,
    Forbidden,
    InvalidInput,
    InvalidRequest,
    LLMRequestError,
    NotFound,
    RaglineError,
    SyncInProgress,
    Unavailable,
    Unsupported,
    UnsupportedType,
    UploadTooLarge,
)
from ragline.logs import get_logger

log = get_logger(__name__)

# Most specific first.
STATUS: tuple[tuple[type[RaglineError], int], ...] = (
    (AuthError, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (SyncInProgress, 409),
    (Unsupported, 409),
    (EmbeddingModelMismatch, 409),
    (Conflict, 409),
    (UploadTooLarge, 413),
    (UnsupportedType, 415),
    (InvalidInput, 422),
    (ConfigurationError, 422),
    (InvalidRequest, 400),
    (LLMRequestError, 502),  # the provider refused what ragline sent it
    (Unavailable, 503),
)
RETRY_AFTER_SECONDS = 5
# An input echoed in a validation error is cut at this size, like pydantic's messages.
_ECHO_LIMIT = 1000


def status_of(error: RaglineError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def install(app: FastAPI) -> None:
    """Answer ragline's errors, and values PostgreSQL refuses, with their statuses."""

    @app.exception_handler(RaglineError)
    async def ragline_error(request: Request, error: RaglineError) -> JSONResponse:
        status = status_of(error)
        if status >= 500:
            log.error("request_failed", error=str(error), kind=type(error).__name__)
        headers: dict[str, str] = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if status == 503:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)

    @app.exception_handler(sa.exc.DataError)
    async def invalid_value(request: Request, error: sa.exc.DataError) -> JSONResponse:
        # A value PostgreSQL refuses (out of range, NUL in text...) came from the request.
        reason = str(error.orig).splitlines()[0] if error.orig else "invalid value"
        log.warning("request_value_refused", reason=reason)
        return JSONResponse({"detail": f"a value of the request is not valid: {reason}"}, 400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_error(item) for item in error.errors()]}, 422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        request_id = structlog.contextvars.get_contextvars().get("request_id", "")
        log.error("request_crashed", kind=type(error).__name__, exc_info=error)
        return JSONResponse(
            {
                "detail": f"internal error; report the request id {request_id} to the "
                "operator, whose log has the cause"
            },
            500,
        )


def _error(item: Any) -> dict[str, Any]:
    """One validation error as JSON that can always be written."""
    error: dict[str, Any] = {
        "type": _text(item.get("type", "value_error")),
        "loc": [part if isinstance(part, int) else _text(part) for part in item.get("loc", ())],
        "msg": _text(item.get("msg", "")),
    }
    if "input" in item and _writable(item["input"]):
        error["input"] = item["input"]
    ctx = item.get("ctx")
    if isinstance(ctx, dict):
        error["ctx"] = {
            _text(key): value if _writable(value) else _text(value) for key, value in ctx.items()
        }
    return error


def _text(value: object) -> str:
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _writable(value: object) -> bool:
    """Whether ``value`` can be answered as strict JSON (no NaN, no lone surrogate) at a
    reasonable size."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return False
    return len(text) <= _ECHO_LIMIT
