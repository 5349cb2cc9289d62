"""``/self-checkout/age-antispoofing``: as ``/age-antispoofing``, with a required ``Terminal-Id`` header."""

from __future__ import annotations

from fastapi import APIRouter

from ageguard.api import schemas
from ageguard.api.routes import add_analysis_route

router = APIRouter(tags=["self-checkout"])
add_analysis_route(router, schemas.SELF_CHECKOUT)
