"""ragline's errors: one small hierarchy per subsystem.

Messages are written for the person who has to act on them: they say what went
wrong and, where there is one, what to do next.
"""

from __future__ import annotations


class RaglineError(Exception):
    """Base of every error ragline raises on purpose."""


class ConfigurationError(RaglineError):
    """The settings or the environment cannot work as given."""


class DatabaseError(RaglineError):
    """The database cannot be reached, or lacks what ragline needs."""


class EmbeddingModelMismatch(DatabaseError):
    """The index was built with another embedding model than the one configured."""


class IngestError(RaglineError):
    """Ingestion of one item failed; the run records it and goes on."""


class ParseError(IngestError):
    """A document could not be turned into text (corrupt, empty, binary...)."""


class SourceUnavailable(IngestError):
    """A source as a whole cannot be listed or read."""


class SyncInProgress(IngestError):
    """Another sync of the same source holds its lock."""


class EmbeddingError(RaglineError):
    """The embedding model failed or could not be loaded."""


class RetrievalError(RaglineError):
    """A search could not be run as asked (bad filter, unknown mode...)."""


class AuthError(RaglineError):
    """A request's credentials are missing, unknown or revoked."""


class Forbidden(RaglineError):
    """The caller's role does not allow what it asked."""


class NotFound(RaglineError):
    """The thing asked for does not exist for this tenant."""


class Conflict(RaglineError):
    """The thing asked for cannot be done in its current state."""


class UploadRejected(RaglineError):
    """An upload is refused before it is stored (empty, too big, wrong type)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class JobQueueUnavailable(RaglineError):
    """The job queue (broker) cannot take a job now."""


class TransientJobError(RaglineError):
    """A job failed for a reason that may pass (database restart, lock held): retry it."""


class LLMError(RaglineError):
    """A language model could not answer."""


class LLMUnavailable(LLMError):
    """No configured language model answered (down, timing out, rate-limited): transient."""


class LLMRequestError(LLMError):
    """A provider refused the request itself (bad key, unknown model, too long): retrying
    the same request will not help."""
