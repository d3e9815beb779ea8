"""Stopping long work on purpose: a job's cancellation and time limit, a document's
parse budget.

A thread cannot be killed in Python, so long loops (a parser's walk, the pipeline's
batches) call ``checkpoint()``; it raises when any watch around the current work says
to stop::

    watch = Watch.limit(3600, lambda: TimeLimitExceeded("job ran past 3600 s"))
    with watching(watch):                      # the job executor, around one job
        ...
        checkpoint()                           # deep inside: raise if the job must stop
    watch.cancel("cancelled by key:7")         # from another thread: the next checkpoint raises

    with watching(Watch.limit(30, lambda: ParseError("parsing took over 30 s"))):
        parse(data)                            # a budget inside the job's own watch

Watches live in a context variable, so each job thread sees only its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from ragline.errors import Cancelled, RaglineError


@dataclass(eq=False)
class Watch:
    """A deadline (monotonic seconds, or None) and a cancellation flag for one piece of
    work. ``error`` builds what ``checkpoint`` raises when the deadline has passed."""

    deadline: float | None = None
    error: Callable[[], RaglineError] = lambda: Cancelled("the time limit was reached")
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    _reason: str = "cancelled"

    @classmethod
    def limit(cls, seconds: float | None, error: Callable[[], RaglineError]) -> Watch:
        """A watch whose deadline is ``seconds`` from now (None: no deadline)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        return cls(deadline=deadline, error=error)

    def cancel(self, reason: str = "cancelled") -> None:
        """Make the next ``checkpoint`` of the watched work raise ``Cancelled(reason)``."""
        self._reason = reason
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def reason(self) -> str:
        """Why the work was cancelled (meaningful once ``cancelled``)."""
        return self._reason

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() > self.deadline

    def check(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled(self._reason)
        if self.expired:
            raise self.error()


_watches: ContextVar[tuple[Watch, ...]] = ContextVar("ragline_watches", default=())


@contextmanager
def watching(watch: Watch) -> Iterator[Watch]:
    """Run the block under ``watch`` (and every watch already around it)."""
    token = _watches.set((*_watches.get(), watch))
    try:
        yield watch
    finally:
        _watches.reset(token)


def checkpoint() -> None:
    """Raise if the current work was cancelled or ran past a deadline (outermost
    watch first, so a job's cancellation wins over a parse budget)."""
    for watch in _watches.get():
        watch.check()
