"""Files on a local (or mounted) file system: one file, or a folder walked recursively.

    source = FileSource(Path("docs"), exclude=("drafts/*",))
    for item in source.list():      # doc_id "guides/install.md", relative to docs/
        data = source.read(item)

Include and exclude patterns are shell globs matched against the path relative to
the root (``*`` crosses folders: ``*.md`` matches ``a/b.md``). By default every file
of a supported type is included; hidden files and folders are skipped.

Built from a tenant's configuration, a source reads only inside the folders the
operator allowed the tenant (``Allowance.folders``): the configured path is checked
when the source is built, and every file it lists or reads, resolved with its symbolic
links followed, is checked again, so a link inside cannot lead outside::

    source = FileSource(root, folders=(Path("/srv/shared/acme"),))
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
from ragline.logs import get_logger

log = get_logger(__name__)


class FileSource:
    def __init__(
        self,
        path: Path,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        folders: Sequence[Path] | None = None,
    ) -> None:
        self.path = path.expanduser().absolute()
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.name = f"files:{self.path}"
        # None: anywhere (the operator's own command line); else only inside these.
        self.folders = None if folders is None else tuple(f.resolve() for f in folders)

    def list(self) -> Iterator[SourceItem]:
        if self.folders is not None and not self._inside(self.path, strict=False):
            raise SourceUnavailable(f"{self.path} is no longer inside the folders allowed")
        if not self.path.exists():
            raise SourceUnavailable(f"{self.path} does not exist")
        if self.path.is_file():
            yield self._item(self.path, self.path.name)
            return
        if not self.path.is_dir():
            raise SourceUnavailable(f"{self.path} is neither a file nor a folder")

        def fail(error: OSError) -> None:
            where = self._relative(Path(str(error.filename or self.path)))
            raise SourceUnavailable(f"cannot list {where}: {error.strerror}") from error

        for folder, dirs, files in os.walk(self.path, onerror=fail):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for filename in sorted(files):
                if filename.startswith("."):
                    continue
                path = Path(folder, filename)
                relative = path.relative_to(self.path).as_posix()
                if not self._wanted(relative):
                    continue
                if not self._inside(path):
                    log.warning("file_outside_allowed_folders", source=self.name, item=relative)
                    continue
                yield self._item(path, relative)

    def read(self, item: SourceItem) -> bytes:
        path = self.path / item.doc_id if self.path.is_dir() else self.path
        if not self._inside(path):
            raise IngestError(
                f"{item.doc_id} leads outside the folders this source may read; not read"
            )
        try:
            return path.read_bytes()
        except OSError as e:
            raise IngestError(f"cannot read {item.doc_id}: {e.strerror or e}") from e

    def _inside(self, path: Path, *, strict: bool = True) -> bool:
        """Whether ``path``, its links followed, lies inside the allowed folders."""
        if self.folders is None:
            return True
        try:
            resolved = path.resolve(strict=strict)
        except (OSError, RuntimeError):
            return False
        return any(resolved.is_relative_to(folder) for folder in self.folders)

    def _relative(self, path: Path) -> str:
        """``path`` as shown in an error: relative to the source's root when it can be."""
        try:
            return path.relative_to(self.path).as_posix() or "."
        except ValueError:
            return path.name

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
            raise SourceUnavailable(f"cannot stat {relative}: {e.strerror}") from e
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
    allowance = context.allowance
    allowance.folder(config.path, f"files source {context.name}")
    source = FileSource(
        Path(config.path),
        include=config.include,
        exclude=config.exclude,
        folders=[Path(folder) for folder in allowance.folders],
    )
    source.name = context.name
    return source


KIND = Kind(name="files", config=FilesConfig, build=_build, summary="A folder, walked recursively.")
