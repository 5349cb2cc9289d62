"""``/age`` and ``/age-verify``: age estimate, and age check against a threshold."""

from __future__ import annotations

from fastapi import APIRouter

from ageguard.api import schemas
from ageguard.api.routes import add_analysis_route

router = APIRouter(tags=["age"])
add_analysis_route(router, schemas.AGE)
add_analysis_route(router, schemas.AGE_VERIFY)
