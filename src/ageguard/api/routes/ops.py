"""Operations: ``/health`` (liveness: the process answers and its models are loaded), ``/ready``
(readiness: that, and the Hub database answers), ``/metrics``.

The two differ on purpose (docs/deploy.md): an orchestrator restarts an instance whose liveness probe fails
and stops sending traffic to one that is not ready. A database outage must take every instance out of the
load balancer, not restart them all, so only ``/ready`` asks the database.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ageguard.api import metrics, schemas
from ageguard.api.service import ServiceState

router = APIRouter(tags=["operations"])

_HEALTH_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": schemas.HealthBody, "description": "The process answers and its models are loaded."},
    503: {"model": schemas.HealthBody, "description": "Models still loading, or their loading failed."},
}
_READY_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": schemas.HealthBody, "description": "Models loaded and the Hub database answering."},
    503: {
        "model": schemas.HealthBody,
        "description": "Models not loaded, or the Hub database unreachable; `detail` says which.",
    },
}


def _answer(models: bool, store: bool | None, detail: str | None) -> JSONResponse:
    ok = detail is None
    body = schemas.HealthBody(status="ok" if ok else "unavailable", models=models, store=store, detail=detail)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/health", response_model=schemas.HealthBody, responses=_HEALTH_RESPONSES, summary="Liveness")
async def health(request: Request) -> JSONResponse:
    """200 once the models are loaded; never asks the database (a database outage is not a reason to
    restart an instance). ``store`` is null here."""
    state: ServiceState = request.app.state.service
    problem = state.models_problem()
    return _answer(problem is None, None, problem)


@router.get("/ready", response_model=schemas.HealthBody, responses=_READY_RESPONSES, summary="Readiness")
async def ready(request: Request) -> JSONResponse:
    """200 when the models are loaded and the Hub database answers within ``ready_timeout_s``, else 503
    with the reason in ``detail``."""
    state: ServiceState = request.app.state.service
    models_problem = state.models_problem()
    store_problem = await state.store_check_async()
    problems = [p for p in (models_problem, store_problem) if p is not None]
    return _answer(models_problem is None, store_problem is None, "; ".join(problems) or None)


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
