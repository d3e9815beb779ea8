"""ragline's errors. Each base says what happens next, and only the faces turn them
into HTTP statuses (``ragline.api.errors``) and exit codes (``ragline.cli.base``):

- ``InvalidRequest``: what was asked cannot be done as asked (400-class). Its kinds:
  ``ConfigurationError`` (settings, a source's configuration, a filter),
  ``NotFound``, ``Conflict``, ``AuthError``, ``Forbidden``, ``UploadRejected``...
- ``IngestError``: one item failed; the run records it and goes on.
- ``Unavailable``: something ragline depends on is down or busy (the database, a
  source, the broker, a model server); retrying later may succeed. ``is_transient``
  says whether an error, ours or a driver's, is of that sort.
- ``JobFailed``: a job ran to its end and failed for good.

Messages are written for the person who has to act on them: they say what went
wrong and, where there is one, what to do next.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError


class RaglineError(Exception):
    """Base of every error ragline raises on purpose."""


# What was asked cannot be done as asked: the caller must change the request.


class InvalidRequest(RaglineError):
    """The request, or the configuration it relies on, cannot work as given."""


class InvalidInput(InvalidRequest):
    """A field of the request is malformed (not JSON, the wrong shape, a NUL character)."""


class ConfigurationError(InvalidRequest):
    """The settings, a source's configuration or the environment cannot work as given."""


class Unsupported(ConfigurationError):
    """What was asked does not apply to this kind of thing (syncing a stream...)."""


class EmbeddingModelMismatch(ConfigurationError):
    """The index was built with another embedding model than the one configured."""


class RetrievalError(InvalidRequest):
    """A search could not be run as asked (bad filter, unknown mode...)."""


class AuthError(InvalidRequest):
    """A request's credentials are missing, unknown or revoked."""


class Forbidden(InvalidRequest):
    """The caller's role does not allow what it asked."""


class OutsideAllowance(Forbidden):
    """A source or tool would reach what the operator has not allowed its tenant (a
    host, a database, a folder, an environment variable)."""


class NotFound(InvalidRequest):
    """The thing asked for does not exist for this tenant."""


class Conflict(InvalidRequest):
    """The thing asked for cannot be done in its current state."""


class UploadRejected(InvalidRequest):
    """An upload is refused before it is stored (empty, bad metadata...)."""


class UploadTooLarge(UploadRejected):
    """An upload is over the size limit."""


class UnsupportedType(UploadRejected):
    """An upload's type is not one ragline can index, or contradicts its name."""


# One item failed: the run records it and goes on.


class IngestError(RaglineError):
    """Ingestion of one item failed; the run records it and goes on."""


class ParseError(IngestError):
    """A document could not be turned into text (corrupt, empty, binary...)."""


class MalformedEvent(IngestError):
    """A message that is not a change event its source can index: dead-lettered."""


# Something ragline depends on is down or busy: stop, and retry later.


class Unavailable(RaglineError):
    """A service ragline depends on cannot be used now; retrying later may succeed."""


class DatabaseError(Unavailable):
    """The database cannot be reached, or lacks what ragline needs."""


class SourceUnavailable(Unavailable):
    """A source as a whole cannot be listed or read: the run stops, to be retried."""


class SyncInProgress(Unavailable):
    """Another sync of the same source holds its lock."""


class JobQueueUnavailable(Unavailable):
    """The job queue (broker) cannot take a job now."""


class EmbeddingError(RaglineError):
    """The embedding model failed or could not be loaded."""


class EmbeddingUnavailable(EmbeddingError, Unavailable):
    """The embedding server cannot answer now (down, timing out, rate-limited)."""


class EmbeddingDimensionMismatch(EmbeddingError, ConfigurationError):
    """The embedding model returns vectors of another dimension than the index's."""


class LLMError(RaglineError):
    """A language model could not answer."""


class LLMUnavailable(LLMError, Unavailable):
    """No configured language model answered (down, timing out, rate-limited)."""


class LLMRequestError(LLMError):
    """A provider refused the request itself (bad key, unknown model, too long): retrying
    the same request will not help."""


# Jobs


class Stopped(RaglineError):
    """The work was stopped on purpose before its end; retrying will not change that."""


class Cancelled(Stopped):
    """The work was cancelled (by its caller, or because its document was deleted)."""


class TimeLimitExceeded(Stopped):
    """The work ran past its time limit and was stopped."""


class JobFailed(RaglineError):
    """The job ran to its end and failed for a reason that retrying will not change."""

    def __init__(self, reason: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.result = result or {}


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may pass by itself: one of ours that says so, or the database
    driver losing its connection."""
    return isinstance(error, Unavailable | sa.exc.OperationalError | sa.exc.InterfaceError)


def problems(error: ValidationError, *, root: str = "config") -> str:
    """A pydantic validation error as one line: ``where: what; where: what``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in error.errors()
    )
