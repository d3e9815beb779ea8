"""The in-process job runner of the embedded default: threads of `ragline serve` that
take queued jobs from PostgreSQL and run them with the same code as a Celery worker.

    runner = JobRunner(executor, threads=2, lease=60)
    runner.start()          # also takes back jobs a stopped server left running
    runner.wake()           # a job was queued: look now rather than at the next poll
    runner.stop()

A running job's heartbeat is refreshed every few seconds, and a request to stop it is
seen within about a second (``JobExecutor.running``). Jobs left running by a server
that stopped (their heartbeat older than ``lease`` seconds) are queued again, at start
and then periodically, unless that was their last attempt: a job that stops its
server every time (runs it out of memory, say) fails with that reason rather than
being taken over for ever. A clean stop queues its own running jobs at once.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

from ragline.jobs.executor import JobExecutor
from ragline.jobs.store import Job
from ragline.logs import get_logger

log = get_logger(__name__)

WORKER_PREFIX = "inprocess:"


class JobRunner:
    def __init__(
        self, executor: JobExecutor, *, threads: int, lease: float, poll: float = 1.0
    ) -> None:
        self.executor = executor
        self.threads = threads
        self.lease = lease
        self.poll = poll
        self.worker = f"{WORKER_PREFIX}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def start(self) -> None:
        self._recover()
        self._threads = [
            threading.Thread(target=self._work, name=f"ragline-job-{n}", daemon=True)
            for n in range(self.threads)
        ]
        self._threads.append(
            threading.Thread(target=self._keep_alive, name="ragline-job-recovery", daemon=True)
        )
        for thread in self._threads:
            thread.start()
        log.info("job_runner_started", worker=self.worker, threads=self.threads)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; jobs still running after ``timeout`` are queued again (their
        transactions die with the process, so the next run starts them afresh)."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout / max(1, len(self._threads)))
        requeued = self.executor.jobs.requeue(worker_like=self.worker)
        log.info("job_runner_stopped", worker=self.worker, requeued=requeued)

    def _recover(self) -> None:
        requeued = self.executor.jobs.requeue(
            worker_like=f"{WORKER_PREFIX}%", stale_after=self.lease
        )
        if requeued:
            log.warning("jobs_recovered", count=requeued)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.executor.jobs.claim_next(worker=self.worker)
            except Exception as e:  # the database is away: wait, then try again
                log.warning("job_claim_failed", error=str(e))
                self._stopping.wait(self.poll * 5)
                continue
            if job is None:
                self._wake.wait(self.poll)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            # A retry is scheduled in the job's run_after: claim_next honours it.
            self.executor.execute(job)
        except Exception as e:  # the database failed while recording the outcome
            log.error("job_runner_error", job_id=str(job.id), error=str(e))

    def _keep_alive(self) -> None:
        interval = max(0.5, self.lease / 3)
        while not self._stopping.wait(interval):
            try:
                self._recover()
            except Exception as e:
                log.warning("job_recovery_failed", error=str(e))
