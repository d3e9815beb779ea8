"""Liveness, readiness and Prometheus metrics (no API key needed; ``/metrics`` wants
``Authorization: Bearer <RAGLINE_METRICS_TOKEN>`` when that token is set).

    curl -H "Authorization: Bearer $RAGLINE_METRICS_TOKEN" http://127.0.0.1:8000/metrics
"""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragline.api.deps import ServicesDep
from ragline.api.schemas import Health
from ragline.config import Settings
from ragline.metrics import REGISTRY

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request, services: ServicesDep) -> Response:
    """The database answers, jobs can run, and the embedding model is loaded."""
    checks: dict[str, str] = {}
    ok = True
    try:
        with services.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError as e:
        ok = False
        checks["database"] = f"unreachable: {type(e).__name__}"
    jobs_ok, detail = services.dispatcher.ready()
    ok &= jobs_ok
    checks["jobs"] = detail
    model_ok = request.app.state.model_loaded.is_set()
    ok &= model_ok
    checks["model"] = "loaded" if model_ok else "loading"
    health = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(health.model_dump(), status_code=200 if ok else 503)


def _may_scrape(request: Request, settings: Settings) -> bool:
    token = settings.metrics_token
    if token is None:
        return True
    expected = f"Bearer {token.get_secret_value()}".encode()
    given = request.headers.get("authorization", "").encode("latin-1", "replace")
    return hmac.compare_digest(given, expected)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, services: ServicesDep) -> Response:
    if not _may_scrape(request, services.settings):
        return JSONResponse(
            {"detail": "/metrics needs 'Authorization: Bearer <token>' (RAGLINE_METRICS_TOKEN)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = generate_latest(REGISTRY) + generate_latest(request.app.state.db_metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
