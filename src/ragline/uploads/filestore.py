"""Where uploaded files are kept until they are deleted: a local folder or an S3 bucket.

    store = get_filestore(settings)     # RAGLINE_FILESTORE_URL: a path or s3://bucket/prefix
    store.put("acme/4f0c…", fileobj)
    data = store.get("acme/4f0c…")
    store.delete("acme/4f0c…")

Keys are made by ragline (tenant and upload id), never from a file's name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from ragline.config import Settings
from ragline.errors import ConfigurationError, IngestError, SourceUnavailable
from ragline.uploads.s3 import S3FileStore


class FileStore(Protocol):
    """Keeps uploaded files. ``get`` raises ``IngestError`` for a missing key and
    ``SourceUnavailable`` when the store itself cannot be reached."""

    def put(self, key: str, data: BinaryIO) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


class LocalFileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().absolute()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} leaves the file store")
        return path

    def put(self, key: str, data: BinaryIO) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then renamed: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, length=1024 * 1024)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as e:
            raise IngestError(f"the stored file {key} is missing from {self.root}") from e
        except OSError as e:
            raise SourceUnavailable(f"cannot read {key} from {self.root}: {e}") from e

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def get_filestore(settings: Settings) -> FileStore:
    location = settings.filestore
    if location.startswith("s3://"):
        return S3FileStore.from_url(location, endpoint_url=settings.s3_endpoint_url)
    if "://" in location:
        raise ConfigurationError(
            f"RAGLINE_FILESTORE_URL={location!r}: use a directory path or s3://bucket/prefix"
        )
    return LocalFileStore(Path(location))
