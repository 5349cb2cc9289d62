"""The seam for the secure-capture scheme (a later issue, owned by the capture engineer).

Requests may carry the ``secure`` query flag (Python SDK: ``secure=True``, Node: ``secure=true``). When it
is true the body must hold a ``secure`` block, else ``SECURE_REQUEST_IS_EMPTY``. The block is then handed
to :func:`verify_secure`, which for now checks only its shape; the capture engineer replaces its body
with the real session, signature and version checks (raising ``SECURE_SESSION_NOT_FOUND``,
``SECURE_SIGNATURE_NOT_FOUND``, ``SECURE_VERSION_NOT_FOUND``, ``INVALID_SECURE_SIGNATURE``,
``SECURE_VERIFICATION_NOT_FOUND``, ``UNTRUSTED_SECURE_SESSION`` or ``INVALID_SECURE_SESSION``).
It is called from a worker thread and may block.
"""

from __future__ import annotations

from typing import Any

from ageguard.errors import AgeGuardError
from ageguard.hub.types import AppView


def check_secure(flag: bool, block: dict[str, Any] | None, app: AppView) -> None:
    """Apply the ``secure`` flag to a request body's ``secure`` block."""
    if not flag:
        return
    if not block:
        raise AgeGuardError("SECURE_REQUEST_IS_EMPTY")
    verify_secure(block, app)


def verify_secure(block: dict[str, Any], app: AppView) -> None:
    """Verify a secure-capture block for ``app``; raise the catalogue's ``SECURE_*`` code on failure."""
    if not block:
        raise AgeGuardError("SECURE_REQUEST_IS_EMPTY")
