"""The FastAPI application.

    app = create_app(get_settings())     # what `ragline serve` runs with uvicorn

On start it connects to the database (migrating it), starts loading the embedding
model in the background (``/readyz`` says when it is loaded) and, without a broker,
starts the in-process job runner and the scheduler of source syncs (with a broker,
Celery Beat schedules them). OpenAPI docs are at ``/docs``, served without a CDN.

In front of the routes, ``BodyLimitMiddleware`` bounds what a request may make the
service read before its key is checked, and ``ObserveMiddleware`` gives every answer
a request id, a log line and a latency figure.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from ragline.answer.service import Answerer, get_llm
from ragline.api import docs
from ragline.api.deps import Services
from ragline.api.errors import install as install_error_handlers
from ragline.api.limits import BodyLimitMiddleware
from ragline.api.metrics import DatabaseCollector
from ragline.api.middleware import ObserveMiddleware
from ragline.api.routes import ask, documents, health, jobs, operator, search, sources
from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.embedding.batching import BatchingEmbedder, LazyEmbedder
from ragline.embedding.factory import get_embedder
from ragline.handlers import JOB_KINDS
from ragline.jobs.dispatch import CeleryDispatcher, Dispatcher, RunnerDispatcher
from ragline.jobs.executor import JobExecutor
from ragline.jobs.runner import JobRunner
from ragline.logs import ensure_logging, get_logger
from ragline.ratelimit import get_rate_limiter
from ragline.search.hybrid import Searcher
from ragline.sources.schedule import EmbeddedScheduler
from ragline.sources.service import SourceService
from ragline.uploads.filestore import get_filestore
from ragline.uploads.service import UploadService

log = get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    ensure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = get_engine(settings)
        runner: JobRunner | None = None
        scheduler: EmbeddedScheduler | None = None
        dispatcher: Dispatcher
        if settings.broker_url:
            dispatcher = CeleryDispatcher(settings)
        else:
            runner = JobRunner(
                JobExecutor(settings, engine, kinds=JOB_KINDS),
                threads=settings.job_threads,
                lease=settings.job_lease_seconds,
            )
            runner.start()
            dispatcher = RunnerDispatcher(runner)
            scheduler = EmbeddedScheduler(engine, dispatcher.dispatch, settings)
            scheduler.start()
        query_embedder = LazyEmbedder(lambda: BatchingEmbedder(get_embedder(settings)))
        searcher = Searcher(engine, settings, query_embedder)
        app.state.services = Services(
            settings=settings,
            engine=engine,
            uploads=UploadService(engine, get_filestore(settings), settings, dispatcher),
            searcher=searcher,
            answerer=Answerer(searcher, settings, get_llm(settings)),
            dispatcher=dispatcher,
            limiter=get_rate_limiter(settings, engine),
            sources=SourceService(engine, settings, dispatcher),
            auth_failures=get_rate_limiter(
                settings,
                engine,
                per_minute=settings.auth_failures_per_minute,
                burst=settings.auth_failures_burst,
            ),
        )
        app.state.db_metrics = CollectorRegistry(auto_describe=True)
        app.state.db_metrics.register(DatabaseCollector(engine))
        app.state.model_loaded = threading.Event()

        def load_model() -> None:
            query_embedder.load()
            app.state.model_loaded.set()

        threading.Thread(target=load_model, name="ragline-model-load", daemon=True).start()
        log.info("server_started", env=settings.env, broker=bool(settings.broker_url))
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            if runner is not None:
                runner.stop()

    app = FastAPI(
        title="ragline",
        summary="Keep a knowledge base fresh in PostgreSQL + pgvector, search it, and answer "
        "questions from it with citations.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    docs.install(app)
    for router in (
        documents.router,
        jobs.router,
        sources.router,
        search.router,
        ask.router,
        health.router,
        operator.router,
    ):
        app.include_router(router)

    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        auth_required=settings.auth_required,
    )
    app.add_middleware(ObserveMiddleware)  # outermost: it sees the limits' answers too

    return app
