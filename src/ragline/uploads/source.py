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

from sqlalchemy.engine import Engine

from ragline.db.tenancy import tenant_scope
from ragline.ingest.connectors.base import SourceItem
from ragline.uploads.filestore import FileStore
from ragline.uploads.names import parse_name, upload_source_name
from ragline.uploads.store import get_upload, storage_key_of


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
            upload = get_upload(conn, self.upload_id)
            key = storage_key_of(conn, self.upload_id)
        if upload is None or key is None:
            return
        doc_id = str(self.upload_id)
        self._keys[doc_id] = key
        yield SourceItem(
            doc_id=doc_id,
            name=parse_name(upload.filename, upload.content_type),
            uri=f"upload://{self.upload_id}/{upload.filename}",
            etag=upload.sha256,
            modified=upload.created_at,
            size=upload.size_bytes,
            metadata=dict(upload.metadata),
        )

    def read(self, item: SourceItem) -> bytes:
        return self.filestore.get(self._keys[item.doc_id])
