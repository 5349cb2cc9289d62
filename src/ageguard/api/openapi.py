"""OpenAPI documentation of the API: every status an endpoint answers, with the codes behind it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from ageguard import __version__
from ageguard.api import schemas
from ageguard.errors import CATALOGUE

#: Statuses the analysis endpoints answer besides 200.
ANALYSIS_ERROR_STATUSES: tuple[int, ...] = (400, 401, 403, 404, 413, 500, 503)

DESCRIPTION = (
    "Self-hosted age estimation and anti-spoofing, wire-compatible with the Yoti AI Services API. "
    "Requests are Yoti signed requests (X-Yoti-Auth-Id, X-Yoti-Auth-Digest, nonce and timestamp query "
    "parameters). Every error body is {error_code, error_message}; the codes per status are listed on "
    "each response and in docs/errors.md."
)


def codes_for(status: int) -> list[str]:
    return [code for code, spec in CATALOGUE.items() if spec.status == status]


def error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error_code", "error_message"],
        "properties": {
            "error_code": {"type": "string", "enum": codes},
            "error_message": {"type": "string"},
        },
    }


def error_responses(statuses: tuple[int, ...] = ANALYSIS_ERROR_STATUSES) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        codes = codes_for(status)
        listed = ", ".join(f"`{code}`" for code in codes)
        responses[status] = {
            "description": f"Error; error_code is one of {listed}.",
            "content": {"application/json": {"schema": error_schema(codes)}},
        }
    return responses


def _header(name: str, description: str, required: bool, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def signed_request_parameters(spec: schemas.EndpointSpec) -> list[dict[str, Any]]:
    uuid = {"type": "string", "format": "uuid"}
    params: list[dict[str, Any]] = [
        _header("X-Yoti-Auth-Id", "The application's SDK ID.", True, uuid),
        _header(
            "X-Yoti-Auth-Digest",
            "base64(RSASSA-PKCS1-v1_5-SHA256(METHOD&PATH_AND_QUERY[&base64(body)])).",
            True,
            {"type": "string"},
        ),
        {"name": "nonce", "in": "query", "required": True, "description": "A fresh UUID.", "schema": uuid},
        {
            "name": "timestamp",
            "in": "query",
            "required": True,
            "description": "Milliseconds (or seconds) since the epoch.",
            "schema": {"type": "integer", "minimum": 0},
        },
        {
            "name": "secure",
            "in": "query",
            "required": False,
            "description": "When true the body must carry a `secure` block.",
            "schema": {"type": "string", "enum": ["true", "True", "false", "False"]},
        },
    ]
    params.append(
        _header(
            "Terminal-Id",
            "Unique ID per machine." + (" Required here." if spec.self_checkout else " Optional."),
            spec.self_checkout,
            {"type": "string", "minLength": 1},
        )
    )
    params.append(
        _header(
            "Session-Id",
            "Groups attempts of one user transaction. Optional.",
            False,
            {"type": "string"},
        )
    )
    return params


def operation_extra(spec: schemas.EndpointSpec) -> dict[str, Any]:
    model = schemas.request_model(spec)
    return {
        "parameters": signed_request_parameters(spec),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        },
    }


_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    schemas.AgeRequest,
    schemas.AntispoofingRequest,
    schemas.AgeVerifyRequest,
    schemas.AgeAntispoofingVerifyRequest,
)


def install(app: FastAPI) -> None:
    """Generate the document once, adding the request-body schemas the routes refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title="AgeGuard",
            version=__version__,
            description=DESCRIPTION,
            routes=app.routes,
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for model in _REQUEST_MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[model.__name__] = schema
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
