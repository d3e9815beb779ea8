"""One upload as a source: what the indexing job syncs.

    source = UploadSource(engine, filestore, tenant="acme", upload_id=upload_id)
    pipeline.sync(source, collection=upload.collection, tenant="acme")

The source lists its one file, or nothing once the upload is deleted: the sync then
removes whatever was indexed from it. It is listed under the sync's lock, which the
deletion takes too, so a deletion and an indexing job never interleave.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ragline.db.tenancy import tenant_scope
from ragline.ingest.sources.base import SourceItem
from ragline.uploads.filestore import FileStore
from ragline.uploads.service import parse_name, upload_source_name


class UploadSource:
    def __init__(
        self, engine: Engine, filestore: FileStore, *, tenant: str, upload_id: uuid.UUID
    ) -> None:
        self.engine = engine
        self.filestore = filestore
        self.tenant = tenant
        self.upload_id = upload_id
        self.name = upload_source_name(upload_id)
        self._keys: dict[str, str] = {}

    def list(self) -> Iterator[SourceItem]:
        with tenant_scope(self.engine, self.tenant) as conn:
            row = conn.execute(
                sa.text(
                    "SELECT filename, content_type, size_bytes, sha256, storage_key, created_at, "
                    "metadata "
                    "FROM uploads WHERE id = :id AND status <> 'deleted'"
                ),
                {"id": self.upload_id},
            ).first()
        if row is None:
            return
        doc_id = str(self.upload_id)
        self._keys[doc_id] = row.storage_key
        yield SourceItem(
            doc_id=doc_id,
            name=parse_name(row.filename, row.content_type),
            uri=f"upload://{self.upload_id}/{row.filename}",
            etag=row.sha256,
            modified=row.created_at,
            size=row.size_bytes,
            metadata=dict(row.metadata),
        )

    def read(self, item: SourceItem) -> bytes:
        return self.filestore.get(self._keys[item.doc_id])
