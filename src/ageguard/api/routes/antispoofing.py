"""``/antispoofing``, ``/age-antispoofing``, ``/age-antispoofing-verify``: liveness, alone or with age."""

from __future__ import annotations

from fastapi import APIRouter

from ageguard.api import schemas
from ageguard.api.routes import add_analysis_route

router = APIRouter(tags=["antispoofing"])
add_analysis_route(router, schemas.ANTISPOOFING)
add_analysis_route(router, schemas.AGE_ANTISPOOFING)
add_analysis_route(router, schemas.AGE_ANTISPOOFING_VERIFY)
