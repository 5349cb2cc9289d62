"""The seam for the secure-capture scheme (implemented in :mod:`ageguard.capture.secure`).

Requests may carry the ``secure`` query flag (Python SDK: ``secure=True``, Node: ``secure=true``). When it
is true the body must hold a ``secure`` block, else ``SECURE_REQUEST_IS_EMPTY``. The block is then handed
to :func:`verify_secure` with the decoded image: the capture session, version, signature and verification
checks (``SECURE_SESSION_NOT_FOUND``, ``SECURE_SIGNATURE_NOT_FOUND``, ``SECURE_VERSION_NOT_FOUND``,
``INVALID_SECURE_SIGNATURE``, ``SECURE_VERIFICATION_NOT_FOUND``, ``UNTRUSTED_SECURE_SESSION``,
``INVALID_SECURE_SESSION``; see docs/secure-capture.md).
It is called from a worker thread and may block.
"""

from __future__ import annotations

from typing import Any

from ageguard.errors import AgeGuardError
from ageguard.hub.types import AppView


def check_secure(
    flag: bool, block: dict[str, Any] | None, app: AppView, image: bytes, hub: object | None = None
) -> None:
    """Apply the ``secure`` flag to a request body's ``secure`` block for the decoded ``image``."""
    if not flag:
        return
    if not block:
        raise AgeGuardError("SECURE_REQUEST_IS_EMPTY")
    verify_secure(block, app, image, hub)


def verify_secure(block: dict[str, Any], app: AppView, image: bytes, hub: object | None = None) -> None:
    """Verify a secure-capture block for ``app``; raise the catalogue's ``SECURE_*`` code on failure.

    ``hub`` is the API's store (its capture sessions are read there); without one, the configured store.
    """
    from ageguard.capture.secure import verify_secure as verify_capture
    from ageguard.hub import Hub
    from ageguard.hub.capture_sessions import CaptureSessions

    sessions = CaptureSessions(hub) if isinstance(hub, Hub) else None
    verify_capture(block, image, app.sdk_id, sessions=sessions)
