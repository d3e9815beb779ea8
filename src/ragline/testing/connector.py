"""What every connector (a ``Source``, and an ``IncrementalSource`` when it has one) must
do, as a pytest class to subclass::

    import pytest
    from ragline.testing.connector import ConnectorContract, ConnectorHarness

    class TestMySource(ConnectorContract):
        @pytest.fixture
        def harness(self, tmp_path) -> ConnectorHarness:
            return MyHarness(tmp_path)      # an empty source of its own

The harness writes to the system behind the connector (a folder, a table, a wiki)
and builds fresh connectors over it; see ``ConnectorHarness``. The tests start from
an empty source, add a few documents through the harness and check that:

- the listing lists exactly those items: unique, stable doc ids (a fresh connector
  lists the same), a name and a unique uri for each, and deleted items vanish;
- ``read`` returns the item's content;
- etags are stable while an item is unchanged and change when it is edited (a
  connector without etags, all None, skips that test);
- for an ``IncrementalSource``: ``changes({})`` returns every item; after
  ``checkpoint()``, a fresh connector given that state reports no item whose etag
  changed (a look-back window may report unchanged items again: they keep their
  etag, so a sync does not even read them), reports an edited item with its new
  etag and a new one; a deletion is either in ``Changes.deleted`` or, for sources
  whose change sets cannot see deletions (a SQL table, Confluence), found by the
  full listing (``list()`` no longer has it) -- either way it is not in the items;
- a bad item (``harness.corrupt``) fails alone: ``Pipeline.sync`` indexes the good
  items, records exactly the bad one in ``report.failures`` and succeeds.

The last test asks for a ``pipeline`` fixture (a ``ragline.ingest.pipeline.Pipeline``
over an empty index), which ragline's own ``tests/conftest.py`` provides.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from ragline.ingest.connectors.base import IncrementalSource, Source, SourceItem
from ragline.ingest.pipeline import Pipeline

TEXTS = {
    "alpha": "Calibrate the dissolved oxygen probe in water-saturated air before a survey.",
    "beta": "Replace the turbidity sensor wiper after every six months of deployment.",
    "gamma": "Store conductivity cells wet: a dried cell drifts for hours afterwards.",
    "delta": "Firmware 4.2 adds burst sampling for the pressure transducer at 16 Hz.",
}
EDITED = "Lithium cells in the logger last two years at a fifteen-minute interval."
COLLECTION = "connector-contract"


class ConnectorHarness(Protocol):
    """The system behind a connector, as the contract drives it.

    ``add`` and the others take the test's own key ("alpha", "beta"...) and a plain
    text of a sentence; the harness stores it as its system holds documents (a
    Markdown file, a row, a page) and ``add`` returns the doc id the connector will
    list it under. ``edit``, ``delete`` and ``corrupt`` take the same key.
    ``corrupt`` leaves the item listed but makes it unreadable or unparseable (an
    empty file, a row without text, a page without a body); it may call
    ``pytest.skip`` where a source cannot hold a bad item. ``incremental`` says
    whether ``source()`` returns an ``IncrementalSource``.
    """

    incremental: bool

    def source(self) -> Source: ...

    def add(self, key: str, text: str) -> str: ...

    def edit(self, key: str, text: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def corrupt(self, key: str) -> None: ...


def _listing(source: Source) -> dict[str, SourceItem]:
    items = list(source.list())
    ids = [item.doc_id for item in items]
    assert len(ids) == len(set(ids)), f"doc ids listed twice: {sorted(ids)}"
    return {item.doc_id: item for item in items}


def _add(harness: ConnectorHarness, *keys: str) -> dict[str, str]:
    """Add the documents of ``keys``; key -> doc id."""
    return {key: harness.add(key, TEXTS[key]) for key in keys}


class ConnectorContract:
    """What every connector must do. Subclasses provide the ``harness`` fixture."""

    @pytest.fixture
    def harness(self) -> ConnectorHarness:
        raise NotImplementedError("a ConnectorContract subclass provides the harness fixture")

    def _incremental(self, harness: ConnectorHarness) -> IncrementalSource:
        source = harness.source()
        if not harness.incremental:
            assert not isinstance(source, IncrementalSource), (
                "the source has changes() and checkpoint(): set the harness's incremental"
            )
            pytest.skip("not an incremental source")
        assert isinstance(source, IncrementalSource)
        return source

    # -- the listing ------------------------------------------------------------------

    def test_the_listing_lists_exactly_the_items(self, harness: ConnectorHarness) -> None:
        ids = _add(harness, "alpha", "beta", "gamma")
        assert len(set(ids.values())) == 3, f"two documents share a doc id: {ids}"
        listed = _listing(harness.source())
        assert sorted(listed) == sorted(ids.values())
        for item in listed.values():
            assert item.name, f"{item.doc_id} has no name"
            assert item.uri, f"{item.doc_id} has no uri"
        uris = [item.uri for item in listed.values()]
        assert len(set(uris)) == len(uris), f"items share a uri: {uris}"
        # Stable: a fresh connector over the same data lists the same items.
        again = _listing(harness.source())
        assert {i: (x.name, x.uri) for i, x in again.items()} == {
            i: (x.name, x.uri) for i, x in listed.items()
        }

    def test_an_empty_source_lists_nothing(self, harness: ConnectorHarness) -> None:
        assert _listing(harness.source()) == {}

    def test_read_returns_the_content(self, harness: ConnectorHarness) -> None:
        ids = _add(harness, "alpha", "beta")
        source = harness.source()
        listed = _listing(source)
        for key, doc_id in ids.items():
            data = source.read(listed[doc_id])
            assert isinstance(data, bytes)
            assert TEXTS[key].encode() in data, f"{doc_id} read as {data[:200]!r}"

    def test_etags_are_stable_and_change_on_edit(self, harness: ConnectorHarness) -> None:
        ids = _add(harness, "alpha", "beta")
        before = {i: x.etag for i, x in _listing(harness.source()).items()}
        if all(etag is None for etag in before.values()):
            pytest.skip("the source has no etags")
        assert None not in before.values(), f"etags only for some items: {before}"
        assert {i: x.etag for i, x in _listing(harness.source()).items()} == before
        harness.edit("alpha", EDITED)
        source = harness.source()
        after = _listing(source)
        assert after[ids["alpha"]].etag != before[ids["alpha"]]
        assert after[ids["beta"]].etag == before[ids["beta"]]
        assert EDITED.encode() in source.read(after[ids["alpha"]])

    def test_deleted_items_vanish_from_the_listing(self, harness: ConnectorHarness) -> None:
        ids = _add(harness, "alpha", "beta", "gamma")
        harness.delete("beta")
        assert sorted(_listing(harness.source())) == sorted([ids["alpha"], ids["gamma"]])

    # -- change sets ------------------------------------------------------------------

    def test_the_first_change_set_holds_everything(self, harness: ConnectorHarness) -> None:
        ids = _add(harness, "alpha", "beta", "gamma")
        changes = self._incremental(harness).changes({})
        assert sorted({item.doc_id for item in changes.items}) == sorted(ids.values())
        assert changes.deleted == {}

    def test_change_sets_after_a_checkpoint(self, harness: ConnectorHarness) -> None:
        ids = _add(harness, "alpha", "beta", "gamma")
        first = self._incremental(harness)
        etags = {item.doc_id: item.etag for item in first.changes({}).items}
        state = first.checkpoint()
        assert state, "the checkpoint after a change set is empty"

        # Unchanged: nothing new, or only items seen again with their etag.
        quiet = self._incremental(harness).changes(dict(state))
        assert quiet.deleted == {}
        for item in quiet.items:
            assert item.doc_id in etags, f"{item.doc_id} reported but never added"
            assert item.etag == etags[item.doc_id], f"{item.doc_id} reported as changed"

        # An edit and an addition: those two, other items only unchanged.
        harness.edit("beta", EDITED)
        ids |= _add(harness, "delta")
        source = self._incremental(harness)
        changes = source.changes(dict(state))
        reported = {item.doc_id: item for item in changes.items}
        assert ids["beta"] in reported, "the edited item is not reported"
        assert ids["delta"] in reported, "the added item is not reported"
        assert reported[ids["beta"]].etag != etags[ids["beta"]] or etags[ids["beta"]] is None
        for doc_id, item in reported.items():
            if doc_id not in (ids["beta"], ids["delta"]):
                assert item.etag == etags[doc_id], f"{doc_id} reported as changed"
        assert EDITED.encode() in source.read(reported[ids["beta"]])

    def test_a_deletion_is_reported_or_listed_away(self, harness: ConnectorHarness) -> None:
        ids = _add(harness, "alpha", "beta", "gamma")
        first = self._incremental(harness)
        first.changes({})
        state = first.checkpoint()
        harness.delete("beta")
        source = self._incremental(harness)
        changes = source.changes(dict(state))
        assert ids["beta"] not in {item.doc_id for item in changes.items}
        if ids["beta"] not in changes.deleted:
            # The change set cannot see deletions: the full listing must.
            assert sorted(_listing(source)) == sorted([ids["alpha"], ids["gamma"]])
        assert set(changes.deleted) <= {ids["beta"]}

    # -- a bad item -------------------------------------------------------------------

    def test_a_bad_item_fails_alone(self, harness: ConnectorHarness, pipeline: Pipeline) -> None:
        ids = _add(harness, "alpha", "beta", "gamma")
        harness.corrupt("beta")
        source = harness.source()
        assert ids["beta"] in _listing(source), "a corrupt item must still be listed"
        report = pipeline.sync(source, collection=COLLECTION)
        assert [failure.doc_id for failure in report.failures] == [ids["beta"]]
        assert (report.added, report.failed) == (2, 1)
