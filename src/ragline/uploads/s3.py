"""Uploaded files in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2…).

    store = S3FileStore.from_url("s3://my-bucket/ragline", endpoint_url="http://minio:9000")

Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID…, profiles, instance
roles). Needs the ``s3`` extra: ``pip install 'ragline[s3]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlparse

from ragline.errors import ConfigurationError, IngestError, SourceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3FileStore:
    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3FileStore:
        try:
            import boto3
        except ImportError as e:
            raise ConfigurationError(
                "an s3:// file store needs boto3: pip install 'ragline[s3]'"
            ) from e
        parsed = urlparse(url)
        if not parsed.netloc:
            raise ConfigurationError(f"{url!r} names no bucket: use s3://bucket/prefix")
        client = boto3.client("s3", endpoint_url=endpoint_url)
        return cls(client, parsed.netloc, parsed.path)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: BinaryIO) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_fileobj(data, self.bucket, self._key(key))
        except (BotoCoreError, ClientError) as e:
            raise SourceUnavailable(f"cannot store {key} in s3://{self.bucket}: {e}") from e

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise IngestError(
                    f"the stored file {key} is missing from s3://{self.bucket}"
                ) from e
            raise SourceUnavailable(f"cannot read {key} from s3://{self.bucket}: {e}") from e
        except BotoCoreError as e:
            raise SourceUnavailable(f"cannot read {key} from s3://{self.bucket}: {e}") from e

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as e:
            raise SourceUnavailable(f"cannot delete {key} from s3://{self.bucket}: {e}") from e
