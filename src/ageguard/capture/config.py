"""The capture module's own settings (environment prefix ``AGEGUARD_CAPTURE_``).

The image and face limits are not here: the capture check applies the server's own
:class:`ageguard.settings.ImageLimits` (one source of truth), and ``GET /capture/config`` hands the
browser module the few of them it needs to encode the capture.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class CaptureSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGEGUARD_CAPTURE_", extra="ignore")

    # --- Secure-capture sessions (docs/secure-capture.md).
    # Lifetime of a session a relying party opens; the page must capture and the backend submit within it.
    session_ttl_s: int = 300
    # The most a relying party may ask for (``ttl_s`` in the create request).
    max_session_ttl_s: int = 900
    # Preview frames one session may have checked (10 minutes at 4 frames per second).
    max_frames_per_session: int = 2400
    # Full-resolution (final) checks one session may run: each is one capture attempt.
    max_final_checks: int = 10
    # A secure capture is trusted only after this many preview frames of the session passed every rule
    # (server-side count: the page cannot claim them) ...
    min_good_frames: int = 3
    # ... and only when it is submitted within this many seconds of passing its final check.
    capture_max_age_s: int = 120
    # Accept capture checks without a session token (anyone who can reach the server may then use the
    # face detector through /capture/check). Off by default: the relying party opens a session per page.
    open_check: bool = False

    # --- Guidance loop in the browser.
    # Preview frames are scaled to this width (the detector sees at most 640 px on the long side anyway).
    preview_width: int = 640
    # Largest preview the check endpoint accepts (pixels), so preview checks stay cheap.
    max_preview_pixels: int = 1280 * 720
    # Relative difference allowed between the preview's and the capture's aspect ratios.
    aspect_tolerance: float = 0.03
    # Pause between two preview checks, milliseconds (one check is in flight at a time).
    preview_interval_ms: int = 200
    # Auto-capture once this many consecutive preview frames passed, spanning at least steady_ms ...
    steady_frames: int = 3
    steady_ms: int = 600
    # ... with the face moving less than this share of the frame between two of them.
    steady_motion: float = 0.04
    # JPEG quality of the capture (canvas.toBlob); the server requires an estimated quality of 95+.
    jpeg_quality: float = 0.95

    # --- Demo page (/capture/demo) and CORS.
    # Serve /capture/demo, whose backend signs requests with the embedded local application. Turn off
    # on a server reachable by others: the demo lets anyone estimate ages as the local application.
    demo: bool = True
    # Origins allowed to load the module and call /capture/config and /capture/check from their pages.
    cors_origins: list[str] = ["*"]


@lru_cache(maxsize=1)
def get_capture_settings() -> CaptureSettings:
    return CaptureSettings()
