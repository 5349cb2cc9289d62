"""The application ``ageguard serve`` runs in each worker process: settings from the environment, the Hub
at the configured database, the real pipeline, models loaded in the background."""

from __future__ import annotations

import contextlib
import io
import logging

from fastapi import FastAPI

from ageguard.api import metrics
from ageguard.api.app import create_app
from ageguard.errors import AgeGuardError
from ageguard.settings import get_settings

log = logging.getLogger("ageguard.api")


def _warmup_image() -> bytes:
    """A plain grey JPEG: runs the detector (and whatever loads lazily) on no one's face."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def build_app() -> FastAPI:
    from ageguard.hub import Hub
    from ageguard.models import store
    from ageguard.vision.pipeline import Pipeline

    settings = get_settings()
    metrics.set_instance_name(settings.instance_name)
    hub = Hub(settings.resolved_database_url)
    pipeline = Pipeline(settings)

    def warmup() -> None:
        store.install_all()  # verifies the pinned files (installs any missing one)
        load = getattr(pipeline, "load", None)
        if callable(load):
            try:
                load()
            except AgeGuardError as exc:  # serve age without liveness rather than nothing
                log.error("liveness model unavailable (%s); anti-spoofing requests will fail", exc.code)
                load(liveness=False)
            return
        with contextlib.suppress(AgeGuardError):  # no face in the warm-up image: expected
            pipeline.analyse(_warmup_image(), level="low", age=True, liveness=True)

    return create_app(settings, pipeline, hub, warmup=warmup)
