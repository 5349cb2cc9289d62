"""HTTP surface of face capture (mounted by the API app next to ``/ai/v1``):

- ``GET  /capture/ageguard-capture.js`` (and its CSS): the browser module, CORS-enabled for any page.
- ``GET  /capture/config``: what the module needs of the server's rules (capture size, quality, pacing).
- ``POST /capture/check``: one preview frame (or the final capture) through the server's image and face
  rules, no estimation, nothing stored; counts frames into the capture session given by ``token``.
- ``POST /ai/v1/capture/sessions``: a relying party's backend opens a secure-capture session (a Yoti
  signed request, like the analysis endpoints); see :mod:`ageguard.capture.secure`.
- ``GET  /capture/demo`` with ``POST /capture/demo/session`` and ``POST /capture/demo/estimate``: a demo
  whose backend signs, server side, with the embedded local application.

Routes read the API's :class:`ageguard.api.service.ServiceState` from ``app.state.service`` and the
capture settings from ``app.state.capture_settings`` (default :func:`get_capture_settings`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ageguard import signing
from ageguard.api.openapi import error_responses
from ageguard.capture.config import CaptureSettings, get_capture_settings
from ageguard.capture.guidance import FrameCheck, check_final, check_preview
from ageguard.capture.secure import VERSION, open_session, valid_token
from ageguard.errors import AgeGuardError
from ageguard.hub.capture_sessions import CaptureSessions
from ageguard.hub.types import ENDPOINTS
from ageguard.vision.image import decode_base64
from ageguard.vision.types import ValidationLevel

log = logging.getLogger("ageguard.capture")

router = APIRouter(tags=["capture"])

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The files served under /capture/ (nothing else there is reachable).
STATIC_FILES: dict[str, str] = {
    "ageguard-capture.js": "text/javascript; charset=utf-8",
    "ageguard-capture.css": "text/css; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}
SESSIONS_PATH = "/ai/v1/capture/sessions"
MIN_SESSION_TTL_S = 10
_DEMO_BASE = "http://ageguard.internal"
_DEMO_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)


# ------------------------------------------------------------------------------- OpenAPI descriptions


class FaceBox(BaseModel):
    left: float
    top: float
    right: float
    bottom: float


class CheckBody(BaseModel):
    """A capture check: ``issues`` are catalogue codes in the server's rule order."""

    ok: bool
    issues: list[str]
    guidance: str
    face: FaceBox | None = None
    measures: dict[str, float] | None = None
    session: dict[str, int] | None = None


class SessionBody(BaseModel):
    version: int
    token: str
    key: str
    expires_at: str
    ttl_s: int


class ConfigBody(BaseModel):
    version: int
    level: str
    capture: dict[str, float]
    guide: dict[str, float]
    preview: dict[str, float]
    session_required: bool
    secure: dict[str, int]


_TOKEN_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[A-Za-z0-9_-]{32,128}$"}
_CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["img", "token"],
    "properties": {
        "img": {"type": "string", "description": "base64 JPEG or PNG: a preview frame, or the capture."},
        "width": {"type": "integer", "minimum": 1, "description": "The capture's width (previews)."},
        "height": {"type": "integer", "minimum": 1, "description": "The capture's height (previews)."},
        "final": {"type": "boolean", "description": "True: img is the capture itself."},
        "token": {**_TOKEN_SCHEMA, "description": "The capture session's token."},
        "level": {"type": "string", "enum": ["normal", "low"]},
    },
}
_SESSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ttl_s": {"type": "integer", "minimum": MIN_SESSION_TTL_S, "description": "Lifetime."}},
}
_UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
_SIGNED_PARAMETERS: list[dict[str, Any]] = [
    {"name": "X-Yoti-Auth-Id", "in": "header", "required": True, "schema": _UUID},
    {"name": "X-Yoti-Auth-Digest", "in": "header", "required": True, "schema": {"type": "string"}},
    {"name": "nonce", "in": "query", "required": True, "schema": _UUID},
    {"name": "timestamp", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 0}},
]


# ------------------------------------------------------------------------------------------- plumbing


def _service(request: Request) -> Any:
    return request.app.state.service


def _capture_settings(request: Request) -> CaptureSettings:
    cfg = getattr(request.app.state, "capture_settings", None)
    return cfg if isinstance(cfg, CaptureSettings) else get_capture_settings()


def _cors(request: Request, cfg: CaptureSettings) -> dict[str, str]:
    origin = request.headers.get("origin")
    if "*" in cfg.cors_origins:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and origin in cfg.cors_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise AgeGuardError("INVALID_BODY_ENCODING") from exc
    if not isinstance(body, dict):
        raise AgeGuardError("INVALID_REQUEST_BODY", "Request body is invalid, it must be a JSON object.")
    return body


def _field_error(name: str) -> AgeGuardError:
    return AgeGuardError("INVALID_REQUEST_BODY", f"Request body is invalid, '{name}' field is invalid.")


def _int_field(body: dict[str, Any], name: str, low: int, high: int) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _field_error(name)
    return value


def _level(body: dict[str, Any]) -> ValidationLevel:
    value = body.get("level", "normal")
    if value == "low":
        return "low"
    if value in ("normal", None):
        return "normal"
    raise AgeGuardError("INVALID_IMG_VALIDATION_LEVEL")


def _error(exc: AgeGuardError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=headers)


@lru_cache(maxsize=16)
def _static(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


# ------------------------------------------------------------------------------------- module files


@router.get("/capture", include_in_schema=False)
@router.get("/capture/", include_in_schema=False)
async def capture_index(request: Request) -> Response:
    if not _capture_settings(request).demo:
        raise AgeGuardError("INVALID_ENDPOINT")
    return RedirectResponse("/capture/demo", status_code=307)


@router.get("/capture/demo", include_in_schema=False)
async def demo_page(request: Request) -> Response:
    if not _capture_settings(request).demo:
        raise AgeGuardError("INVALID_ENDPOINT")
    return Response(
        _static("demo.html"),
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": _DEMO_CSP,
            "Permissions-Policy": "camera=(self), microphone=()",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )


@router.get(
    "/capture/config",
    summary="Capture module configuration",
    response_model=ConfigBody,
    responses=error_responses((404, 500)),
)
async def capture_config(request: Request) -> JSONResponse:
    """The server's capture rules the browser module needs (image limits come from the server's settings)."""
    cfg = _capture_settings(request)
    state = _service(request)
    level = "low" if request.query_params.get("level") == "low" else "normal"
    limits = state.settings.limits(level)
    body = {
        "version": VERSION,
        "level": level,
        "capture": {
            "jpeg_quality": cfg.jpeg_quality,
            "min_bytes": limits.min_bytes,
            "max_bytes": limits.max_bytes,
            "min_width": limits.min_width,
            "max_width": limits.max_width,
            "min_height": limits.min_height,
            "max_height": limits.max_height,
            "max_pixels": limits.max_pixels,
        },
        "guide": {
            # Aim the face box at the middle of the accepted face-to-image ratios.
            "face_ratio": round((limits.min_face_ratio + min(limits.max_face_ratio, 1.0)) / 2, 3),
            "min_face_margin": limits.min_face_margin,
        },
        "preview": {
            "width": cfg.preview_width,
            "interval_ms": cfg.preview_interval_ms,
            "steady_frames": cfg.steady_frames,
            "steady_ms": cfg.steady_ms,
            "steady_motion": cfg.steady_motion,
        },
        "session_required": not cfg.open_check,
        "secure": {"version": VERSION, "min_good_frames": cfg.min_good_frames},
    }
    return JSONResponse(body, headers={**_cors(request, cfg), "Cache-Control": "no-cache"})


def _add_static_route(name: str, media_type: str) -> None:
    """One GET route per file (no pattern route, so other /capture/ paths keep their 404 and 405)."""

    async def serve_file(request: Request) -> Response:
        headers = {
            **_cors(request, _capture_settings(request)),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }
        return Response(_static(name), media_type=media_type, headers=headers)

    serve_file.__name__ = "capture_static_" + name.replace("-", "_").replace(".", "_")
    router.add_api_route(f"/capture/{name}", serve_file, methods=["GET"], include_in_schema=False)


for _name, _media_type in STATIC_FILES.items():
    _add_static_route(_name, _media_type)


# -------------------------------------------------------------------------------------- frame checks


@router.post(
    "/capture/check",
    summary="Check a capture frame against the image requirements",
    response_model=CheckBody,
    responses=error_responses((400, 401, 404, 413, 500, 503)),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _CHECK_SCHEMA}}}
    },
)
async def capture_check(request: Request) -> JSONResponse:
    """Body: ``img`` (base64 JPEG/PNG), ``width`` and ``height`` (the capture's size, for a preview),
    ``final`` (true: ``img`` is the capture itself), ``token`` (the capture session), ``level``.
    200 with ``{"ok", "issues", "guidance", "face"?}``; nothing is stored but the session's counters."""
    cfg = _capture_settings(request)
    cors = _cors(request, cfg)
    try:
        return JSONResponse(await _check(request, cfg), headers={**cors, "Cache-Control": "no-store"})
    except AgeGuardError as exc:
        return _error(exc, cors)


async def _check(request: Request, cfg: CaptureSettings) -> dict[str, Any]:
    state = _service(request)
    body = _json_body(await request.body())
    final = body.get("final", False) is True
    level = _level(body)
    token = body.get("token")
    sessions: CaptureSessions | None = None
    if token is None or token == "":
        if not cfg.open_check:
            raise AgeGuardError("SECURE_SESSION_NOT_FOUND", "A capture session token is required.")
        token = None
    else:
        if not valid_token(token):
            raise AgeGuardError("INVALID_SECURE_SESSION")
        sessions = CaptureSessions(state.hub)
        session = await run_in_threadpool(sessions.get, token)
        if session is None:
            raise AgeGuardError("INVALID_SECURE_SESSION", "Unknown capture session.")
        if session.used or session.expired(datetime.now(UTC)):
            raise AgeGuardError("INVALID_SECURE_SESSION", "The capture session has ended.")
    img = body.get("img")
    if not isinstance(img, str) or not img:
        raise AgeGuardError("IMAGE_NOT_PROVIDED")
    width = height = 0
    if not final:
        width = _int_field(body, "width", 1, 100_000)
        height = _int_field(body, "height", 1, 100_000)
    if not state.models_ready.is_set():
        raise AgeGuardError("SERVICE_UNAVAILABLE", "The models are still loading; please retry shortly.")
    data = decode_base64(img)
    pipeline, settings = state.pipeline, state.settings

    def job() -> FrameCheck:
        if final:
            return check_final(pipeline, data, level=level)
        return check_preview(
            pipeline,
            settings,
            data,
            width,
            height,
            level=level,
            aspect_tolerance=cfg.aspect_tolerance,
            max_preview_pixels=cfg.max_preview_pixels,
        )

    result = await state.queue.run(job)
    out = result.as_json()
    if sessions is not None and token is not None:
        now = datetime.now(UTC)
        if final:
            digest = hashlib.sha256(data).hexdigest() if result.ok else None
            view = await run_in_threadpool(
                sessions.record_final, token, now, digest, max_checks=cfg.max_final_checks
            )
        else:
            view = await run_in_threadpool(
                sessions.record_frame, token, now, good=result.ok, max_frames=cfg.max_frames_per_session
            )
        if view is None:
            raise AgeGuardError("INVALID_SECURE_SESSION", "The capture session has ended.")
        out["session"] = {
            "frames": view.frames_checked,
            "good": view.good_frames,
            "finals": view.final_checks,
        }
    return out


# ----------------------------------------------------------------------------------- secure sessions


def _endpoint_for(hub: Any, sdk_id: str) -> str:
    """Opening a session is allowed to an application allowed any analysis endpoint: the first one."""
    try:
        app = hub.find_app(sdk_id.strip()) if sdk_id.strip() else None
    except AgeGuardError:
        app = None
    if app is not None:
        for name in ENDPOINTS:
            if app.allows(name):
                return name
    return ENDPOINTS[0]


@router.post(
    SESSIONS_PATH,
    summary="Open a secure-capture session (signed request)",
    response_model=SessionBody,
    responses=error_responses((400, 401, 403, 404, 413, 500, 503)),
    openapi_extra={
        "parameters": _SIGNED_PARAMETERS,
        "requestBody": {"required": False, "content": {"application/json": {"schema": _SESSION_SCHEMA}}},
    },
)
async def create_capture_session(request: Request) -> JSONResponse:
    """Signed like every ``/ai/v1`` endpoint. Body: ``{}`` or ``{"ttl_s": seconds}``.
    200: ``{"version", "token", "key", "expires_at", "ttl_s"}`` for the relying party's page."""
    state = _service(request)
    cfg = _capture_settings(request)
    raw = await request.body()
    endpoint = await run_in_threadpool(_endpoint_for, state.hub, request.headers.get("x-yoti-auth-id", ""))
    ctx = await run_in_threadpool(
        state.verifier.verify,
        method=request.method,
        raw_path=request.scope.get("raw_path") or request.scope["path"].encode("utf-8"),
        query_string=request.scope.get("query_string", b""),
        headers=request.headers,
        body=raw,
        endpoint=endpoint,
    )
    body = _json_body(raw)
    ttl_s = cfg.session_ttl_s
    if body.get("ttl_s") is not None:
        ttl_s = _int_field(body, "ttl_s", MIN_SESSION_TTL_S, cfg.max_session_ttl_s)
    grant = await run_in_threadpool(open_session, CaptureSessions(state.hub), ctx.app.sdk_id, ttl_s=ttl_s)
    return JSONResponse(grant.as_json(), headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------------- demo


def _local_app(request: Request) -> tuple[str, Any]:
    from ageguard.client import load_local_app

    local = load_local_app(_service(request).settings.home)
    if local is None or not local.key_path.is_file():
        raise AgeGuardError(
            "APP_NOT_FOUND",
            "The demo needs the local application that `ageguard serve` creates on first start.",
        )
    return local.sdk_id, signing.load_private_key(local.key_path.read_bytes())


async def _signed_call(
    request: Request, endpoint: str, payload: dict[str, Any], query: str = ""
) -> httpx.Response:
    """A Yoti signed POST to ``/ai/v1`` + ``endpoint`` as the local application, in process."""
    sdk_id, key = await run_in_threadpool(_local_app, request)
    params = f"{query}&" if query else ""
    target = f"{endpoint}?{params}nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"
    body = json.dumps(payload).encode()
    headers = {
        "X-Yoti-Auth-Id": sdk_id,
        "X-Yoti-Auth-Digest": signing.sign(key, "POST", target, body),
        "Content-Type": "application/json",
    }
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url=_DEMO_BASE, timeout=120.0) as client:
        return await client.post("/ai/v1" + target, content=body, headers=headers)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {"error_code": "UNSPECIFIED_ERROR", "error_message": "Unexpected answer."}
    return {"status": response.status_code, "body": body}


def _demo_enabled(request: Request) -> None:
    if not _capture_settings(request).demo:
        raise AgeGuardError("INVALID_ENDPOINT")


@router.post("/capture/demo/session", include_in_schema=False)
async def demo_session(request: Request) -> JSONResponse:
    """The demo backend opens a secure session as the local application (its key stays on the server)."""
    _demo_enabled(request)
    response = await _signed_call(request, "/capture/sessions", {})
    return JSONResponse(
        response.json(), status_code=response.status_code, headers={"Cache-Control": "no-store"}
    )


@router.post("/capture/demo/estimate", include_in_schema=False)
async def demo_estimate(request: Request) -> JSONResponse:
    """The demo backend sends the capture to ``/age?secure=true`` and, when that passed, to
    ``/antispoofing``; it answers both upstream statuses and bodies for the page to show."""
    _demo_enabled(request)
    body = _json_body(await request.body())
    img = body.get("img")
    if not isinstance(img, str) or not img:
        raise AgeGuardError("IMAGE_NOT_PROVIDED")
    payload: dict[str, Any] = {"img": img}
    device = body.get("device")
    if device in ("mobile", "laptop"):
        payload["metadata"] = {"device": device}
    secure = body.get("secure")
    query = ""
    if secure is not None:
        payload["secure"] = secure
        query = "secure=true"
    age = await _signed_call(request, "/age", payload, query)
    result: dict[str, Any] = {"age": _answer(age), "antispoofing": None}
    if age.status_code == 200:
        payload.pop("secure", None)
        result["antispoofing"] = _answer(await _signed_call(request, "/antispoofing", payload))
    return JSONResponse(result, headers={"Cache-Control": "no-store"})
