"""Sources: where documents come from. One module per kind of source."""

from ragline.ingest.sources.base import Source, SourceItem
from ragline.ingest.sources.files import FileSource

__all__ = ["FileSource", "Source", "SourceItem"]
