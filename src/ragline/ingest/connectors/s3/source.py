"""Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2…), listed on a schedule
and kept fresh between listings by the bucket's event notifications.

    kind = get_kind("s3")
    config = kind.validate({"bucket": "handbooks", "prefix": "hr/", "region": "eu-west-1"})
    source = kind.build(config, context)
    for item in source.list():      # doc_id "hr/leave.pdf" (the key)
        data = source.read(item)

A full sync lists the bucket and removes what is gone, so it repairs any event that was
missed; an unchanged object (same ETag) is not even read. Event notifications keep the
index fresh between listings: see ``events``.

Include and exclude patterns are shell globs on the key relative to the prefix (``*``
crosses ``/``); by default every object of a supported file type is included.
Credentials come from the variables ``access_key_id_env`` and ``secret_access_key_env``
name (variables the operator allowed the tenant); without them, requests are unsigned
(a public bucket) unless the operator allowed the tenant the service's own credentials
(``ambient_credentials``: boto3's usual chain of AWS_* variables, profiles, instance
roles). The bucket must be one the tenant may read, and ``endpoint_url``'s host one it
may reach (checked when the source is built). Needs the ``s3`` extra:
``pip install 'ragline[s3]'``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import boto3
from botocore import UNSIGNED
from botocore import exceptions as boto
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ragline.errors import IngestError, SourceUnavailable
from ragline.ingest.connectors.base import SourceItem
from ragline.ingest.connectors.kinds import SourceContext
from ragline.ingest.parsers import SUPPORTED_SUFFIXES
from ragline.logs import get_logger
from ragline.netguard import NetGuard

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = get_logger(__name__)


class S3Config(BaseModel):
    """A bucket, or the part of it under ``prefix``."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=1, pattern=r"^[^/\s]+$")
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None
    include: list[str] = []
    exclude: list[str] = []
    events_queue: str | None = None
    events_url_env: str | None = None
    events_url: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> S3Config:
        if bool(self.access_key_id_env) != bool(self.secret_access_key_env):
            raise ValueError("set both access_key_id_env and secret_access_key_env, or neither")
        if self.events_url and self.events_url_env:
            raise ValueError("set events_url or events_url_env, not both")
        if self.events_queue and not (self.events_url or self.events_url_env):
            raise ValueError(
                "events_queue needs the broker's URL: events_url_env (the name of a variable "
                "holding amqp://user:password@host/vhost) or events_url (without a password)"
            )
        return self

    def key_filter(self) -> KeyFilter:
        return KeyFilter(self.prefix, tuple(self.include), tuple(self.exclude))


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """Which keys a source holds: under ``prefix``, not a folder marker, and matching
    the include/exclude globs (relative to the prefix)."""

    prefix: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def wanted(self, key: str) -> bool:
        if not key.startswith(self.prefix) or key.endswith("/"):
            return False
        relative = key[len(self.prefix) :].lstrip("/")
        if any(fnmatchcase(relative, pattern) for pattern in self.exclude):
            return False
        if self.include:
            return any(fnmatchcase(relative, pattern) for pattern in self.include)
        return PurePosixPath(relative).suffix.lower() in SUPPORTED_SUFFIXES


class S3Source:
    """The objects of one bucket. ``read`` adds the object's ``sha256`` to the item's
    metadata, so that the indexed document carries it."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        keys: KeyFilter | None = None,
        max_bytes: int | None = None,
        page_size: int = 1000,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.keys = keys or KeyFilter()
        self.max_bytes = max_bytes
        self.page_size = page_size
        self.name = f"s3:{bucket}/{self.keys.prefix}"

    def list(self) -> Iterator[SourceItem]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self.keys.prefix,
            PaginationConfig={"PageSize": self.page_size},
        )
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    if self.keys.wanted(obj["Key"]):
                        yield self._item(obj["Key"], obj["ETag"], obj["Size"], obj["LastModified"])
        except (boto.BotoCoreError, boto.ClientError) as e:
            raise self._unavailable("list", e) from e

    def read(self, item: SourceItem) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=item.doc_id)
        except boto.ClientError as e:
            if _code(e) in ("NoSuchKey", "404"):
                raise IngestError(
                    f"{item.uri} no longer exists (deleted since it was listed)"
                ) from e
            raise self._unavailable("read", e) from e
        except boto.BotoCoreError as e:
            raise self._unavailable("read", e) from e
        body = response["Body"]
        size = response["ContentLength"]
        if self.max_bytes is not None and size > self.max_bytes:
            body.close()
            raise IngestError(
                f"{size:,} bytes is over the limit of {self.max_bytes:,} (RAGLINE_MAX_FILE_BYTES)"
            )
        try:
            data = body.read()
        except (boto.BotoCoreError, OSError) as e:
            raise self._unavailable("read", e) from e
        item.metadata["sha256"] = hashlib.sha256(data).hexdigest()
        return data

    def head(self, key: str) -> SourceItem | None:
        """The object ``key`` as it is now, or None when it does not exist."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except boto.ClientError as e:
            if _code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._unavailable("read", e) from e
        except boto.BotoCoreError as e:
            raise self._unavailable("read", e) from e
        return self._item(
            key, response["ETag"], response["ContentLength"], response["LastModified"]
        )

    def _item(self, key: str, etag: str, size: int, modified: dt.datetime) -> SourceItem:
        return SourceItem(
            doc_id=key,
            name=PurePosixPath(key).name,
            uri=f"s3://{self.bucket}/{key}",
            etag=etag.strip('"'),
            modified=modified,
            size=size,
        )

    def _unavailable(self, action: str, error: Exception) -> SourceUnavailable:
        where = f"s3://{self.bucket}/{self.keys.prefix}"
        endpoint = self.client.meta.endpoint_url
        if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
            hint = (
                "no credentials found: set access_key_id_env and secret_access_key_env, or "
                "give boto3 its usual ones (AWS_ACCESS_KEY_ID..., a profile, an instance role)"
            )
        elif isinstance(error, boto.ConnectionError | boto.HTTPClientError):
            hint = f"{endpoint} cannot be reached ({error}): check endpoint_url and the network"
        elif isinstance(error, boto.ClientError) and _code(error) == "NoSuchBucket":
            hint = (
                f"the bucket {self.bucket} does not exist at {endpoint}: "
                "check bucket, region and endpoint_url"
            )
        elif isinstance(error, boto.ClientError) and _code(error) in _DENIED:
            hint = (
                f"access denied ({_code(error)}): check the credentials and that they allow "
                "s3:ListBucket and s3:GetObject on the bucket"
            )
        else:
            hint = str(error)
        return SourceUnavailable(f"cannot {action} {where}: {hint}")


_DENIED = frozenset(
    {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
    | {"AllAccessDisabled", "ExpiredToken", "InvalidToken", "AccountProblem"}
)


def _code(error: boto.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# The endpoint a bucket is reached at when the configuration names none.
_AWS_ENDPOINT = "https://s3.amazonaws.com"


def _client(config: S3Config, context: SourceContext) -> S3Client:
    """A client of the bucket's endpoint, within the tenant's allowance."""
    what = f"s3 source {context.name}"
    allowance = context.allowance
    allowance.check_bucket(config.bucket, what)
    key_id = allowance.secret(config.access_key_id_env, what, context.settings)
    secret_key = allowance.secret(config.secret_access_key_env, what, context.settings)
    guard = NetGuard(allowance, what)
    if config.endpoint_url:
        guard.check_url(config.endpoint_url)
    elif not (allowance.public_hosts or allowance.host_allowed("s3.amazonaws.com", 443)):
        raise guard.refusal(_AWS_ENDPOINT)
    signature: dict[str, object] = {}
    if key_id is None and not allowance.ambient_credentials:
        signature["signature_version"] = UNSIGNED
    return boto3.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret_key,
        config=Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            **signature,  # type: ignore[arg-type]
        ),
    )


def build(config: S3Config, context: SourceContext) -> S3Source:
    source = S3Source(
        _client(config, context),
        config.bucket,
        keys=config.key_filter(),
        max_bytes=context.settings.max_file_bytes,
    )
    source.name = context.name
    return source
