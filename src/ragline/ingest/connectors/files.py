"""Files on a local (or mounted) file system: one file, or a folder walked recursively.

    source = FileSource(Path("docs"), exclude=("drafts/*",))
    for item in source.list():      # doc_id "guides/install.md", relative to docs/
        data = source.read(item)

Include and exclude patterns are shell globs matched against the path relative to
the root (``*`` crosses folders: ``*.md`` matches ``a/b.md``). By default every file
of a supported type is included; hidden files and folders are skipped.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ragline.errors import IngestError, SourceUnavailable
from ragline.ingest.connectors.base import SourceItem
from ragline.ingest.connectors.kinds import Kind, SourceContext
from ragline.ingest.parsers import SUPPORTED_SUFFIXES


class FileSource:
    def __init__(
        self,
        path: Path,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> None:
        self.path = path.expanduser().absolute()
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.name = f"files:{self.path}"

    def list(self) -> Iterator[SourceItem]:
        if not self.path.exists():
            raise SourceUnavailable(f"{self.path} does not exist")
        if self.path.is_file():
            yield self._item(self.path, self.path.name)
            return
        if not self.path.is_dir():
            raise SourceUnavailable(f"{self.path} is neither a file nor a folder")

        def fail(error: OSError) -> None:
            raise SourceUnavailable(f"cannot list {error.filename}: {error.strerror}") from error

        for folder, dirs, files in os.walk(self.path, onerror=fail):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for filename in sorted(files):
                if filename.startswith("."):
                    continue
                path = Path(folder, filename)
                relative = path.relative_to(self.path).as_posix()
                if self._wanted(relative):
                    yield self._item(path, relative)

    def read(self, item: SourceItem) -> bytes:
        try:
            path = self.path / item.doc_id if self.path.is_dir() else self.path
            return path.read_bytes()
        except OSError as e:
            raise IngestError(f"cannot read {item.uri}: {e.strerror or e}") from e

    def _wanted(self, relative: str) -> bool:
        if any(fnmatchcase(relative, pattern) for pattern in self.exclude):
            return False
        if self.include:
            return any(fnmatchcase(relative, pattern) for pattern in self.include)
        return Path(relative).suffix.lower() in SUPPORTED_SUFFIXES

    @staticmethod
    def _item(path: Path, relative: str) -> SourceItem:
        try:
            stat = path.stat()
        except OSError as e:
            raise SourceUnavailable(f"cannot stat {path}: {e.strerror}") from e
        return SourceItem(
            doc_id=relative,
            name=path.name,
            uri=path.as_uri(),
            etag=f"{stat.st_size}-{stat.st_mtime_ns}",
            modified=dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC),
            size=stat.st_size,
        )


class FilesConfig(BaseModel):
    """A folder (or one file) on this machine or a mount."""

    model_config = ConfigDict(extra="forbid")

    path: str
    include: list[str] = []
    exclude: list[str] = []


def _build(config: FilesConfig, context: SourceContext) -> FileSource:
    source = FileSource(Path(config.path), include=config.include, exclude=config.exclude)
    source.name = context.name
    return source


KIND = Kind(name="files", config=FilesConfig, build=_build, summary="A folder, walked recursively.")
