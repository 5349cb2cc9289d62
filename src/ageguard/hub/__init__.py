"""The Hub: organisations, applications, terminals, replay nonces and request records.

This module's names are the public surface the API codes against::

    hub = Hub(url)                      # migrates to the newest schema on open
    app = hub.find_app(sdk_id)          # AppView | None
    hub.use_nonce(sdk_id, nonce, now, ttl_s)   # True first time, False on replay
    hub.record_request(RequestRecord(endpoint=..., outcome="OK", latency_ms=...))
"""

from ageguard.hub.keys import load_rsa_public_key, public_key_der
from ageguard.hub.store import Hub, HubError, StoreUnavailable, normalise_endpoints
from ageguard.hub.types import (
    DEFAULT_ORG,
    ENDPOINTS,
    ORG_STATUSES,
    AppView,
    OrgView,
    RequestRecord,
    TerminalView,
    UsageRow,
    endpoint_name,
)

__all__ = [
    "DEFAULT_ORG",
    "ENDPOINTS",
    "ORG_STATUSES",
    "AppView",
    "Hub",
    "HubError",
    "OrgView",
    "RequestRecord",
    "StoreUnavailable",
    "TerminalView",
    "UsageRow",
    "endpoint_name",
    "load_rsa_public_key",
    "normalise_endpoints",
    "public_key_der",
]
