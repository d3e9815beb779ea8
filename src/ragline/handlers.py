"""Every kind of background job, for the processes that run them: the API's
in-process runner, ``ragline worker`` and ``ragline sync``.

    executor = JobExecutor(settings, engine, kinds=JOB_KINDS)
    app = create_celery(settings, kinds=JOB_KINDS)
"""

from __future__ import annotations

from ragline.jobs.executor import JobKind
from ragline.sources.jobs import SYNC_SOURCE
from ragline.uploads.jobs import INDEX_UPLOAD

JOB_KINDS: tuple[JobKind, ...] = (INDEX_UPLOAD, SYNC_SOURCE)
