"""What every ``FileStore`` must do, as a pytest class to subclass::

    import pytest
    from ragline.testing.filestore import FileStoreContract
    from ragline.uploads.filestore import FileStore

    class TestMyFileStore(FileStoreContract):
        @pytest.fixture
        def store(self) -> FileStore:
            return MyFileStore(...)       # an empty store, private to the test

Each test method runs against the fixture's store: what is put is got back whole
(a file of over a megabyte, and a second version over the first), keys are
independent of each other, deleting is idempotent, and a missing key is an
``IngestError`` of that file, not ``SourceUnavailable`` (which would make the job
wait for the store instead of failing the upload).
"""

from __future__ import annotations

import io

import pytest

from ragline.errors import IngestError, SourceUnavailable
from ragline.uploads.filestore import FileStore


class FileStoreContract:
    """What every file store must do. Subclasses provide the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> FileStore:
        raise NotImplementedError("a FileStoreContract subclass provides the store fixture")

    def test_round_trip(self, store: FileStore) -> None:
        data = bytes(range(256)) * 5000  # 1.28 MB: more than one read or part
        store.put("tenant/one", io.BytesIO(data))
        assert store.get("tenant/one") == data
        store.put("tenant/one", io.BytesIO(b"second version"))
        assert store.get("tenant/one") == b"second version"

    def test_keys_are_independent(self, store: FileStore) -> None:
        store.put("tenant/a", io.BytesIO(b"first"))
        store.put("tenant/b", io.BytesIO(b"second"))
        store.put("other/a", io.BytesIO(b"third"))
        store.delete("tenant/a")
        assert store.get("tenant/b") == b"second"
        assert store.get("other/a") == b"third"
        with pytest.raises(IngestError):
            store.get("tenant/a")

    def test_delete_is_idempotent(self, store: FileStore) -> None:
        store.put("tenant/two", io.BytesIO(b"x"))
        store.delete("tenant/two")
        store.delete("tenant/two")
        with pytest.raises(IngestError, match="missing"):
            store.get("tenant/two")

    def test_deleting_a_key_never_stored_is_not_an_error(self, store: FileStore) -> None:
        store.delete("tenant/never-stored")

    def test_a_missing_file_is_a_failure_of_that_item(self, store: FileStore) -> None:
        with pytest.raises(IngestError) as raised:
            store.get("tenant/never")
        assert not isinstance(raised.value, SourceUnavailable)
