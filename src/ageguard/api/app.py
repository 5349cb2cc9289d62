"""The FastAPI application factory ``create_app(settings, pipeline, hub)``."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ageguard import __version__, signing
from ageguard.api import openapi
from ageguard.api.auth import Verifier
from ageguard.api.handler import error_response, log_unexpected
from ageguard.api.limits import BodySizeLimitMiddleware, send_error
from ageguard.api.queue import InferenceQueue
from ageguard.api.routes import age, antispoofing, ops, self_checkout
from ageguard.api.service import HubLike, PipelineLike, ServiceState
from ageguard.capture.routes import router as capture_router
from ageguard.errors import AgeGuardError
from ageguard.settings import Settings

log = logging.getLogger("ageguard.api")

API_PREFIX = signing.BASE_PATH
_SLASHES = re.compile(r"/{2,}")


class NormalisePathMiddleware:
    """Route ``/ai/v1//age`` (the Ruby SDK's target) as ``/ai/v1/age``, and ``/ai/v1/age/`` (Ruby <= 1.6,
    which puts a ``/`` before the ``?``) too, instead of a redirect no SDK follows; ``raw_path`` stays as
    received (it is what the signature is verified against)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            routed = _SLASHES.sub("/", path) if "//" in path else path
            if routed.endswith("/") and routed.startswith(API_PREFIX + "/") and routed != API_PREFIX + "/":
                routed = routed.rstrip("/")
            if routed != path:
                scope = dict(scope)
                scope["path"] = routed
        await self.app(scope, receive, send)


class CatchAllMiddleware:
    """Any exception that escapes a route: 500 ``UNSPECIFIED_ERROR``, never a stack trace to the client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except AgeGuardError as exc:
            if not started:
                await send_error(send, exc)
        except Exception as exc:
            log_unexpected(scope.get("path", "?"), exc)
            if not started:
                await send_error(send, AgeGuardError("UNSPECIFIED_ERROR"))


_STATUS_CODES = {404: "INVALID_ENDPOINT", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code)
    if code is None:
        code = "UNSPECIFIED_ERROR" if exc.status_code >= 500 else "INVALID_REQUEST_BODY"
    return error_response(AgeGuardError(code), headers=dict(exc.headers or {}))


async def _ageguard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgeGuardError)
    return error_response(exc)


def create_app(
    settings: Settings,
    pipeline: PipelineLike,
    hub: HubLike,
    *,
    warmup: Callable[[], None] | None = None,
) -> FastAPI:
    """The API over ``pipeline`` and ``hub``. ``warmup`` (model loading) runs in the background at start-up;
    until it returns, ``/health`` answers 503 and the analysis endpoints ``SERVICE_UNAVAILABLE``."""
    state = ServiceState(
        settings=settings,
        pipeline=pipeline,
        hub=hub,
        verifier=Verifier(settings, hub),
        queue=InferenceQueue(settings.inference_threads, settings.queue_size),
        warmup=warmup,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(
        title="AgeGuard",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = state
    for router in (age.router, antispoofing.router, self_checkout.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(ops.router)
    app.include_router(capture_router)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(AgeGuardError, _ageguard_error)
    # Last added is outermost: CatchAll → NormalisePath → BodySizeLimit → routes.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(NormalisePathMiddleware)
    app.add_middleware(CatchAllMiddleware)
    openapi.install(app)
    return app
