from __future__ import annotations

import io

import pytest

from ragline.auth import Principal
from ragline.config import Settings
from ragline.errors import Forbidden, UploadRejected
from ragline.jobs.tasks import JobExecutor
from ragline.uploads.service import _measure, parse_name, storage_key


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
    with pytest.raises(UploadRejected) as raised:
        parse_name(filename, content_type)
    assert raised.value.status == 415


def test_measure_stops_at_the_limit() -> None:
    data = io.BytesIO(b"abc" * 10)
    assert _measure(data, 30)[0] == 30
    assert data.tell() == 0
    with pytest.raises(UploadRejected) as raised:
        _measure(io.BytesIO(b"x" * 31), 30)
    assert raised.value.status == 413


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


def test_retry_backoff_doubles_up_to_its_cap() -> None:
    executor = JobExecutor(Settings(job_retry_backoff=2, job_retry_backoff_max=10))
    assert [executor.backoff(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]


def test_unsafe_development_defaults_are_refused_in_production() -> None:
    with pytest.raises(ValueError, match="RAGLINE_AUTH_REQUIRED"):
        Settings(env="production", auth_required=False)
