"""Routes per endpoint family; each module adds its routes to a router."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ageguard.api import openapi, schemas
from ageguard.api.handler import handle


def add_analysis_route(router: APIRouter, spec: schemas.EndpointSpec) -> None:
    async def endpoint(request: Request) -> Response:
        return await handle(request, spec)

    endpoint.__name__ = spec.name.replace("-", "_").replace("/", "_")
    router.add_api_route(
        spec.path,
        endpoint,
        methods=["POST"],
        summary=spec.summary,
        operation_id=f"post_{endpoint.__name__}",
        response_model=schemas.response_model(spec),
        responses=openapi.error_responses(),
        openapi_extra=openapi.operation_extra(spec),
    )
