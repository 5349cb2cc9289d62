"""Operations: ``/health`` (models loaded and store reachable), ``/ready``, ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ageguard.api import metrics, schemas
from ageguard.api.service import ServiceState

router = APIRouter(tags=["operations"])

_HEALTH_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": schemas.HealthBody, "description": "Models loaded and the store reachable."},
    503: {
        "model": schemas.HealthBody,
        "description": "Models still loading, failed, or the store unreachable.",
    },
}


async def _health(request: Request) -> JSONResponse:
    state: ServiceState = request.app.state.service
    models = state.models_ready.is_set()
    store = await state.store_ok_async()
    ok = models and store
    body = schemas.HealthBody(status="ok" if ok else "unavailable", models=models, store=store)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/health", response_model=schemas.HealthBody, responses=_HEALTH_RESPONSES, summary="Health")
async def health(request: Request) -> JSONResponse:
    """200 once the models are loaded and the Hub store answers, else 503."""
    return await _health(request)


@router.get("/ready", response_model=schemas.HealthBody, responses=_HEALTH_RESPONSES, summary="Readiness")
async def ready(request: Request) -> JSONResponse:
    """The same as ``/health`` (for orchestrators that probe readiness separately)."""
    return await _health(request)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus."}
    },
    summary="Prometheus metrics",
)
async def prometheus_metrics() -> Response:
    payload, content_type = await run_in_threadpool(metrics.render)
    return Response(payload, media_type=content_type)
