"""How a sync reports its progress: a progress bar, a job's progress field.

pipeline.sync(source, collection="docs", progress=JobProgress(...))
"""

from __future__ import annotations

from typing import Protocol

from ragline.domain import Outcome


class Progress(Protocol):
    """Hears about a sync as it goes (a progress bar, a job's progress field)."""

    def started(self, total: int) -> None: ...

    def item_started(self, doc_id: str) -> None: ...

    def item_done(self, doc_id: str, outcome: Outcome) -> None: ...


class Silent:
    """Hears nothing."""

    def started(self, total: int) -> None:
        pass

    def item_started(self, doc_id: str) -> None:
        pass

    def item_done(self, doc_id: str, outcome: Outcome) -> None:
        pass
