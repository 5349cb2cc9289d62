"""One API request, start to end: body → signature → headers → fields → image → pipeline → response.

The image exists only in local variables of this flow; it is never logged, recorded or kept.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ageguard.api import metrics
from ageguard.api.auth import AuthContext
from ageguard.api.schemas import AnalysisRequest, EndpointSpec, age_check, parse_request
from ageguard.api.secure import check_secure
from ageguard.api.service import ServiceState
from ageguard.errors import AgeGuardError
from ageguard.hub.types import RequestRecord
from ageguard.vision.image import decode_base64
from ageguard.vision.pipeline import Analysis

log = logging.getLogger("ageguard.api")

TERMINAL_HEADER = "terminal-id"
SESSION_HEADER = "session-id"
_MAX_ID_LENGTH = 255


def error_response(error: AgeGuardError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


def log_unexpected(where: str, exc: BaseException) -> None:
    """Log an unexpected failure by type and stack frames only: the message could quote request data."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unexpected %s in %s\n%s", type(exc).__name__, where, frames)


def _header_id(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value[:_MAX_ID_LENGTH] or None


def build_body(
    spec: EndpointSpec, req: AnalysisRequest, analysis: Analysis, max_st_dev: float
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if spec.liveness:
        if analysis.liveness is None:
            raise AgeGuardError("FAIL_PREDICTION", "Antispoofing prediction failed.")
        body["antispoofing"] = {"prediction": analysis.liveness.prediction}
    if spec.age:
        if analysis.age is None:
            raise AgeGuardError("FAIL_PREDICTION", "Age distribution is empty.")
        estimate = analysis.age
        if spec.verify:
            assert req.threshold is not None and req.operator is not None
            check = age_check(estimate.age, estimate.st_dev, req.threshold, req.operator, max_st_dev)
            if spec.liveness:
                body["age"] = {"age_check": check}
            else:
                body["age_check"] = check
        else:
            body["age"] = {"age": float(estimate.age), "st_dev": float(estimate.st_dev)}
    return body


async def handle(request: Request, spec: EndpointSpec) -> Response:
    state: ServiceState = request.app.state.service
    settings = state.settings
    started = time.perf_counter()
    terminal_id = _header_id(request, TERMINAL_HEADER)
    session_id = _header_id(request, SESSION_HEADER)
    sdk_id: str | None = None
    device: str | None = None
    code = "OK"
    response: Response
    try:
        # Shed load before any work: a full queue or loading models answer 503 without reading the body,
        # checking the signature or spending the nonce (the client may retry the same request).
        if not state.models_ready.is_set():
            raise AgeGuardError("SERVICE_UNAVAILABLE", "The models are still loading; please retry shortly.")
        if state.queue.full:
            metrics.QUEUE_REJECTIONS.inc()
            raise AgeGuardError("SERVICE_UNAVAILABLE", "The service is busy; please retry shortly.")
        raw = await request.body()
        ctx: AuthContext = await run_in_threadpool(
            state.verifier.verify,
            method=request.method,
            raw_path=request.scope.get("raw_path") or request.scope["path"].encode("utf-8"),
            query_string=request.scope.get("query_string", b""),
            headers=request.headers,
            body=raw,
            endpoint=spec.name,
        )
        sdk_id = ctx.app.sdk_id
        if spec.self_checkout and terminal_id is None:
            raise AgeGuardError("TERMINAL_ID_REQUIRED")
        pipeline = state.pipeline
        read: dict[str, str | None] = {}

        def job(raw: bytes = raw) -> tuple[AnalysisRequest, Analysis]:
            # Parsing a megabyte of JSON and base64 is CPU work too: it runs here, on the inference
            # thread, never on the event loop where it would stall every other connection.
            req = parse_request(raw, spec)
            read["device"] = req.device
            data = decode_base64(req.img)
            if ctx.secure:
                check_secure(ctx.secure, req.secure, ctx.app, data, state.hub)
            analysis = pipeline.analyse(
                data,
                level=req.level,
                age=spec.age,
                liveness=spec.liveness,
                assurance=req.assurance,
            )
            return req, analysis

        del raw
        try:
            req, analysis = await state.queue.run(job)
        except AgeGuardError as exc:
            if exc.code == "SERVICE_UNAVAILABLE":
                metrics.QUEUE_REJECTIONS.inc()
            raise
        finally:
            device = read.get("device")
            metrics.IN_FLIGHT.set(state.queue.pending)
        metrics.observe_stages(analysis.timings_ms)
        response = JSONResponse(build_body(spec, req, analysis, settings.max_st_dev))
    except AgeGuardError as exc:
        code = exc.code
        response = error_response(exc)
    except Exception as exc:
        log_unexpected(spec.path, exc)
        code = "UNSPECIFIED_ERROR"
        response = error_response(AgeGuardError("UNSPECIFIED_ERROR"))
    # The answer goes out only once its record is committed (docs/deploy.md: an instance killed after
    # answering loses no record); a record the Hub refuses turns the answer into a 503.
    recorded = await state.record(
        RequestRecord(
            endpoint=spec.path.lstrip("/"),
            outcome=code,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            sdk_id=sdk_id,
            terminal_id=terminal_id,
            session_id=session_id,
            device=device,
        )
    )
    if not recorded:
        code = "SERVICE_UNAVAILABLE"
        response = error_response(
            AgeGuardError("SERVICE_UNAVAILABLE", "The request could not be recorded; please retry.")
        )
    elapsed = time.perf_counter() - started
    metrics.observe_request(spec.name if not spec.self_checkout else spec.path.lstrip("/"), code, elapsed)
    return response
