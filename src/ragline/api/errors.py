"""Errors as HTTP answers: the one place a ragline error becomes a status.

The most specific class listed wins; an error of none of these classes is a 500.
``Unavailable`` errors (503) say when to try again.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI, Request
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
