"""Each error has one meaning, mapped once to an HTTP status and to an exit code."""

from __future__ import annotations

import inspect

import pytest
import sqlalchemy as sa

from ragline import errors
from ragline.api.errors import status_of
from ragline.cli.base import exit_code

ALL = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.RaglineError)
]


def _instance(cls: type[errors.RaglineError]) -> errors.RaglineError:
    return cls("reason", {}) if cls is errors.JobFailed else cls("reason")


@pytest.mark.parametrize("cls", [c for c in ALL if issubclass(c, errors.InvalidRequest)])
def test_what_the_caller_must_change_is_a_4xx_and_a_usage_exit(
    cls: type[errors.RaglineError],
) -> None:
    error = _instance(cls)
    assert 400 <= status_of(error) < 500
    assert exit_code(error) in (64, 66, 75, 77, 78)
    assert not errors.is_transient(error)


@pytest.mark.parametrize("cls", [c for c in ALL if issubclass(c, errors.Unavailable)])
def test_an_outage_is_a_503_and_transient(cls: type[errors.RaglineError]) -> None:
    error = _instance(cls)
    expected = 409 if issubclass(cls, errors.SyncInProgress) else 503
    assert status_of(error) == expected
    assert exit_code(error) == 69
    assert errors.is_transient(error)


@pytest.mark.parametrize(
    "cls", [c for c in ALL if issubclass(c, errors.IngestError | errors.JobFailed)]
)
def test_a_failed_item_or_job_is_not_retried(cls: type[errors.RaglineError]) -> None:
    assert not errors.is_transient(_instance(cls))


def test_the_database_driver_losing_its_connection_is_transient() -> None:
    lost = sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert errors.is_transient(lost)
    assert not errors.is_transient(ValueError("a bug"))


def test_every_error_says_which_family_it_belongs_to() -> None:
    families = (
        errors.InvalidRequest,
        errors.IngestError,
        errors.Unavailable,
        errors.JobFailed,
        errors.Stopped,
        errors.EmbeddingError,
        errors.LLMError,
    )
    orphans = [cls.__name__ for cls in ALL if cls is not errors.RaglineError]
    orphans = [name for name in orphans if not issubclass(getattr(errors, name), families)]
    assert orphans == []
