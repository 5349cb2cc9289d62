"""Shared pytest configuration: keep additions small; fixtures live in their own modules, imported here."""

from hub_fixtures import hub, hub_env, hub_url  # noqa: F401  (Hub store database fixtures)
from image_fixtures import capture_jpeg, face_detector  # noqa: F401  (generated images, detector)
