"""The jobs running in this process, watched: their heartbeat is kept fresh, and a job
asked to stop (``DELETE /v1/jobs/{id}``, its document deleted) is cancelled within
about a second, at its next ``ragline.cancel.checkpoint()``.

    running = RunningJobs(jobs, poll=1.0, heartbeat_every=20)
    with running.watch(job.id, watch):      # the executor, around one job
        handler(job)                         # its checkpoints raise once it is cancelled

One thread per process polls the ``jobs`` table, and only while jobs run: it starts
with the first job and ends when none is left (so that a forked Celery worker starts
its own).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from ragline.cancel import Watch
from ragline.jobs.store import JobStore
from ragline.logs import get_logger

log = get_logger(__name__)


class RunningJobs:
    def __init__(self, jobs: JobStore, *, poll: float, heartbeat_every: float) -> None:
        self.jobs = jobs
        self.poll = poll
        self.heartbeat_every = heartbeat_every
        self._watches: dict[uuid.UUID, Watch] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ids(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._watches)

    @contextmanager
    def watch(self, job_id: uuid.UUID, watch: Watch) -> Iterator[Watch]:
        """Watch the job ``job_id`` while the block runs: ``watch`` is cancelled when
        the job is asked to stop."""
        with self._lock:
            self._watches[job_id] = watch
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ragline-job-watcher", daemon=True
                )
                self._thread.start()
        try:
            yield watch
        finally:
            with self._lock:
                self._watches.pop(job_id, None)

    def _run(self) -> None:
        beaten = time.monotonic()
        while True:
            time.sleep(self.poll)
            with self._lock:
                watches = dict(self._watches)
                if not watches:
                    self._thread = None
                    return
            try:
                for job_id, reason in self.jobs.cancel_requests(list(watches)).items():
                    if not watches[job_id].cancelled:
                        log.info("job_cancel_seen", job_id=str(job_id), reason=reason)
                        watches[job_id].cancel(reason)
                if time.monotonic() - beaten >= self.heartbeat_every:
                    self.jobs.heartbeat(list(watches))
                    beaten = time.monotonic()
            except Exception as e:  # the database is away: try again at the next poll
                log.warning("job_watch_failed", error=str(e))
