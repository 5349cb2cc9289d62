"""The capture module's settings live in :mod:`ageguard.settings` (``Settings.capture``, environment
``AGEGUARD_CAPTURE__<NAME>``), beside the image and face limits that the capture check applies.
"""

from __future__ import annotations

from ageguard.settings import CaptureSettings, get_settings

__all__ = ["CaptureSettings", "get_capture_settings"]


def get_capture_settings() -> CaptureSettings:
    return get_settings().capture
