"""Capture test helpers: the real API app with the capture router and the local application
``ageguard serve`` would create, and a client that plays the browser module's part."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric import rsa
from facescene import scene
from fastapi import FastAPI
from PIL import Image
from tests_api_helpers import Api

from ageguard.api.app import create_app
from ageguard.capture.config import CaptureSettings
from ageguard.capture.routes import router as capture_router
from ageguard.capture.secure import encode_verification, sign_capture
from ageguard.client import LOCAL_APP_INFO, LOCAL_APP_KEY
from ageguard.hub import Hub
from ageguard.hub.keys import der_of, private_key_pem
from ageguard.settings import Settings
from ageguard.vision.pipeline import Pipeline


def with_capture_router(app: FastAPI) -> FastAPI:
    """The API app with the capture routes (a no-op once create_app mounts them itself)."""
    if not any(getattr(route, "path", None) == "/capture/check" for route in app.routes):
        app.include_router(capture_router)
    return app


def jpeg(rgb: np.ndarray, quality: int = 95, size: tuple[int, int] | None = None) -> bytes:
    im = Image.fromarray(rgb)
    if size is not None:
        im = im.resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class CaptureApi(Api):
    """The signed-request helper of the API tests, plus the capture flows."""

    def open_session(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.send("/capture/sessions", payload or {})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def preview(self, session: dict[str, Any], rgb: np.ndarray, **extra: Any) -> dict[str, Any]:
        h, w = rgb.shape[:2]
        body = {"img": b64(jpeg(rgb, 85, (640, 640 * h // w))), "width": w, "height": h}
        body.update({"token": session["token"], **extra})
        response = self.client.post("/capture/check", json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def final(self, session: dict[str, Any], image: bytes) -> dict[str, Any]:
        response = self.client.post("/capture/check", json={"img": b64(image), "final": True, **session})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def live_capture(self, rgb: np.ndarray | None = None, frames: int = 3) -> tuple[bytes, dict[str, Any]]:
        """What the module does: a session, ``frames`` good previews, a final check, the signed block."""
        rgb = scene() if rgb is None else rgb
        session = self.open_session()
        for _ in range(frames):
            assert self.preview(session, rgb)["ok"]
        image = jpeg(rgb, 95)
        assert self.final({"token": session["token"]}, image)["ok"]
        return image, secure_block(session, image, frames=frames, good=frames)


def secure_block(session: dict[str, Any], image: bytes, **facts: Any) -> dict[str, Any]:
    verification = encode_verification({"v": 1, "nonce": "n0", "frames": 0, "good": 0, **facts})
    key = base64.urlsafe_b64decode(session["key"] + "=" * (-len(session["key"]) % 4))
    return {
        "version": 1,
        "token": session["token"],
        "signature": sign_capture(key, session["token"], image, verification),
        "verification": verification,
    }


def make_capture_app(
    tmp_path: Path, pipeline: Pipeline, key: rsa.RSAPrivateKey, **capture: Any
) -> tuple[FastAPI, Hub, Settings, str]:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(settings.resolved_database_url)
    view = hub.create_app("local", None, der_of(key.public_key()))
    # What `ageguard serve` leaves in AGEGUARD_HOME for the embedded default application.
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / LOCAL_APP_KEY).write_bytes(private_key_pem(key))
    (settings.home / LOCAL_APP_INFO).write_text(
        json.dumps({"sdk_id": view.sdk_id, "key_path": str(settings.home / LOCAL_APP_KEY)})
    )
    app = with_capture_router(create_app(settings, pipeline, hub))
    app.state.capture_settings = CaptureSettings(**capture)
    return app, hub, settings, view.sdk_id
