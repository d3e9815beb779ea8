"""The file stores of uploads: one contract (``ragline.testing.filestore``), met by the
local folder and by S3 (a real S3-compatible server, moto, started by the tests)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.auth import Principal
from ragline.config import Settings
from ragline.errors import SourceUnavailable
from ragline.handlers import JOB_KINDS
from ragline.jobs.dispatch import PollingDispatcher
from ragline.jobs.executor import JobExecutor
from ragline.testing.filestore import FileStoreContract
from ragline.uploads.filestore import FileStore, LocalFileStore, get_filestore
from ragline.uploads.s3 import S3FileStore
from ragline.uploads.service import UploadService
from tests.integration.s3_server import moto_server
from tests.integration.service import client_for, free_port, serve_in_thread

BUCKET = "ragline-uploads"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def bucket(s3_endpoint: str, aws_credentials: None) -> str:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    return BUCKET


class TestLocalFileStore(FileStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FileStore:
        return LocalFileStore(tmp_path / "files")

    def test_keys_cannot_leave_the_folder(self, tmp_path: Path) -> None:
        store = LocalFileStore(tmp_path / "files")
        with pytest.raises(ValueError, match="leaves"):
            store.put("../outside", io.BytesIO(b"x"))


class TestS3FileStore(FileStoreContract):
    @pytest.fixture
    def store(self, bucket: str, s3_endpoint: str) -> FileStore:
        return S3FileStore.from_url(f"s3://{bucket}/prefix", endpoint_url=s3_endpoint)

    def test_objects_are_under_the_prefix(self, store: FileStore, s3_endpoint: str) -> None:
        store.put("acme/obj", io.BytesIO(b"data"))
        client = boto3.client("s3", endpoint_url=s3_endpoint)
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert "prefix/acme/obj" in keys

    def test_an_unreachable_store_is_transient(self, aws_credentials: None) -> None:
        store = S3FileStore.from_url("s3://b", endpoint_url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(SourceUnavailable):
            store.get("k")


def test_uploads_kept_in_s3_are_indexed(
    settings: Settings, clean_db: Engine, bucket: str, s3_endpoint: str
) -> None:
    s3_settings = settings.model_copy(
        update={"filestore_url": f"s3://{bucket}/uploads", "s3_endpoint_url": s3_endpoint}
    )
    assert isinstance(get_filestore(s3_settings), S3FileStore)
    with serve_in_thread(s3_settings) as url:
        client = client_for(url, clean_db, "acme")
        ids = client.upload("tide.md", b"# Tides\n\nSpring tides peak at dawn.\n", "text/markdown")
        job = client.wait_job(ids.json()["job_id"])
        assert job["status"] == "succeeded", job
        document_id = ids.json()["document_id"]
        s3 = boto3.client("s3", endpoint_url=s3_endpoint)
        key = f"uploads/acme/{document_id}"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().startswith(b"# Tides")
        assert client.search("spring tides", filters={"document_id": document_id})
        assert client.delete(f"/v1/documents/{document_id}").status_code == 204
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        assert listed == []


def test_an_unreachable_file_store_makes_the_job_retry(
    settings: Settings, clean_db: Engine, aws_credentials: None
) -> None:
    """The store going away is not the document's fault: the job waits and retries
    rather than failing the upload."""
    service = UploadService(clean_db, get_filestore(settings), settings, PollingDispatcher())
    _, job = service.accept(
        Principal(tenant="acme", role="writer", key_id=None),
        io.BytesIO(b"# Tides\n\nSpring tides peak at dawn.\n"),
        filename="tide.md",
        content_type="text/markdown",
        collection="uploads",
    )
    unreachable = settings.model_copy(
        update={"filestore_url": "s3://gone", "s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}
    )
    retry_in = JobExecutor(unreachable, clean_db, kinds=JOB_KINDS).execute_id(job.id, worker="test")
    # The first backoff, jittered down by up to half (ragline.retry.Backoff).
    assert retry_in is not None
    assert settings.job_retry_backoff / 2 <= retry_in <= settings.job_retry_backoff
    with clean_db.connect() as conn:
        status, error = conn.execute(
            sa.text("SELECT status, error FROM jobs WHERE id = :id"), {"id": job.id}
        ).one()
        failed = conn.execute(
            sa.text("SELECT count(*) FROM documents WHERE status = 'failed'")
        ).scalar_one()
    assert status == "retrying"
    assert "SourceUnavailable" in error
    assert failed == 0
    # Once the store is back, the next attempt indexes the document.
    assert (
        JobExecutor(settings, clean_db, kinds=JOB_KINDS).execute_id(job.id, worker="test") is None
    )
    with clean_db.connect() as conn:
        status, attempts = conn.execute(
            sa.text("SELECT status, attempts FROM jobs WHERE id = :id"), {"id": job.id}
        ).one()
    assert (status, attempts) == ("succeeded", 2)
