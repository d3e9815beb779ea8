"""The FastAPI application.

    app = create_app(get_settings())     # what `ragline serve` runs with uvicorn

On start it connects to the database (migrating it), starts loading the embedding
model in the background (``/readyz`` says when it is loaded) and, without a broker,
starts the in-process job runner and the scheduler of source syncs (with a broker,
Celery Beat schedules them). OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from ragline.answer.service import Answerer, get_llm
from ragline.api.deps import Services
from ragline.api.middleware import ObserveMiddleware
from ragline.api.routes import ask, documents, health, jobs, search, sources
from ragline.config import Settings
from ragline.db.engine import get_engine
from ragline.errors import (
    AuthError,
    Conflict,
    DatabaseError,
    Forbidden,
    JobQueueUnavailable,
    LLMRequestError,
    LLMUnavailable,
    NotFound,
    RaglineError,
    RetrievalError,
    SourceUnavailable,
    UploadRejected,
)
from ragline.ingest.embedders import get_embedder
from ragline.ingest.embedders.batching import BatchingEmbedder, LazyEmbedder
from ragline.jobs.dispatch import CeleryDispatcher, Dispatcher, RunnerDispatcher
from ragline.jobs.runner import JobRunner
from ragline.jobs.tasks import JobExecutor
from ragline.logs import ensure_logging, get_logger
from ragline.metrics import DatabaseCollector
from ragline.ratelimit import get_rate_limiter
from ragline.search.hybrid import Searcher
from ragline.sources.schedule import EmbeddedScheduler
from ragline.uploads.filestore import get_filestore
from ragline.uploads.service import UploadService

log = get_logger(__name__)

_STATUS: dict[type[RaglineError], int] = {
    AuthError: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RetrievalError: 400,
    JobQueueUnavailable: 503,
    DatabaseError: 503,
    SourceUnavailable: 503,  # the file store, when storing an upload
    LLMUnavailable: 503,
    LLMRequestError: 502,  # the provider refused what ragline sent it
}


def _status_of(error: RaglineError) -> int:
    if isinstance(error, UploadRejected):
        return error.status
    for kind, status in _STATUS.items():
        if isinstance(error, kind):
            return status
    return 500


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
                JobExecutor(settings, engine),
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
            uploads=UploadService(engine, get_filestore(settings), settings),
            searcher=searcher,
            answerer=Answerer(searcher, settings, get_llm(settings)),
            dispatcher=dispatcher,
            limiter=get_rate_limiter(settings, engine),
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
    )
    for router in (
        documents.router,
        jobs.router,
        sources.router,
        search.router,
        ask.router,
        health.router,
    ):
        app.include_router(router)

    @app.exception_handler(RaglineError)
    async def ragline_error(request: Request, error: RaglineError) -> JSONResponse:
        status = _status_of(error)
        if status >= 500:
            log.error("request_failed", error=str(error), kind=type(error).__name__)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)

    @app.exception_handler(sa.exc.DataError)
    async def invalid_value(request: Request, error: sa.exc.DataError) -> JSONResponse:
        # A value PostgreSQL refuses (out of range, NUL in text...) came from the request.
        reason = str(error.orig).splitlines()[0] if error.orig else "invalid value"
        log.warning("request_value_refused", reason=reason)
        return JSONResponse({"detail": f"a value of the request is not valid: {reason}"}, 400)

    app.add_middleware(ObserveMiddleware, max_upload_bytes=settings.max_upload_bytes)

    return app
