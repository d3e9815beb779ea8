from __future__ import annotations

import io
import json

import pytest

from ragline.api.errors import status_of
from ragline.auth import Principal
from ragline.config import Settings
from ragline.errors import Forbidden, InvalidInput, UnsupportedType, UploadTooLarge
from ragline.jobs.executor import JobExecutor
from ragline.retry import Backoff
from ragline.uploads.metadata import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    check_metadata,
    parse_metadata,
)
from ragline.uploads.names import parse_name, storage_key
from ragline.uploads.service import _measure


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("manual.pdf", "application/pdf", "manual.pdf"),
        ("manual.PDF", "application/octet-stream", "manual.PDF"),
        ("notes", "text/plain", "notes.txt"),
        ("notes", "text/markdown; charset=utf-8", "notes.md"),
        ("readme.md", "text/plain", "readme.md"),
        ("page.htm", "text/html", "page.htm"),
        ("rows.json", "application/json", "rows.json"),
        ("guide.rst", "", "guide.rst"),
    ],
)
def test_parse_name(filename: str, content_type: str, expected: str) -> None:
    assert parse_name(filename, content_type) == expected


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("photo.png", "image/png"),
        ("photo.pdf", "image/png"),
        ("report.pdf", "text/html"),
        ("archive.zip", "application/octet-stream"),
        ("noname", "application/octet-stream"),
    ],
)
def test_unsupported_or_contradictory_types_are_415(filename: str, content_type: str) -> None:
    with pytest.raises(UnsupportedType) as raised:
        parse_name(filename, content_type)
    assert status_of(raised.value) == 415


def test_measure_stops_at_the_limit() -> None:
    data = io.BytesIO(b"abc" * 10)
    assert _measure(data, 30)[0] == 30
    assert data.tell() == 0
    with pytest.raises(UploadTooLarge) as raised:
        _measure(io.BytesIO(b"x" * 31), 30)
    assert status_of(raised.value) == 413


def test_storage_keys_cannot_be_steered_by_the_tenant_name() -> None:
    import uuid

    key = storage_key("../../etc", uuid.UUID(int=1))
    assert "/" not in key.split("/", 1)[0]
    assert ".." not in key.split("/")


def test_roles_are_ordered() -> None:
    reader = Principal(tenant="t", role="reader", key_id=1)
    admin = Principal(tenant="t", role="admin", key_id=2)
    assert reader.can("reader")
    assert not reader.can("writer")
    assert admin.can("writer")
    with pytest.raises(Forbidden, match="reader role"):
        reader.require("writer")


def test_retry_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    executor = JobExecutor(Settings(job_retry_backoff=2, job_retry_backoff_max=10), kinds=())
    assert executor.backoff_policy == Backoff(first=2, cap=10)
    assert [Backoff(2, 10, jitter=False).delay(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    for attempt, ceiling in enumerate([2, 4, 8, 10, 10], start=1):
        delays = {executor.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered, so that many workers do not retry in step


def test_unsafe_development_defaults_are_refused_in_production() -> None:
    with pytest.raises(ValueError, match="RAGLINE_AUTH_REQUIRED"):
        Settings(env="production", auth_required=False)


def test_metadata_nested_thousands_deep_is_a_clear_422() -> None:
    deep = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(InvalidInput) as raised:
        parse_metadata(deep)
    assert status_of(raised.value) == 422
    assert f"deeper than {MAX_METADATA_DEPTH}" in str(raised.value)


def test_metadata_depth_and_size_limits() -> None:
    def nested(lists: int) -> str:
        return "[" * lists + "1" + "]" * lists

    assert parse_metadata('{"a": ' + nested(MAX_METADATA_DEPTH - 1) + "}")
    with pytest.raises(InvalidInput):
        parse_metadata('{"a": ' + nested(MAX_METADATA_DEPTH) + "}")
    with pytest.raises(InvalidInput, match="over the limit"):
        parse_metadata(json.dumps({"k": "x" * MAX_METADATA_BYTES}))
    with pytest.raises(InvalidInput, match="JSON object"):
        parse_metadata("[1]")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_metadata("{")
    assert parse_metadata(None) == {}
    with pytest.raises(InvalidInput):
        check_metadata({"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]})
