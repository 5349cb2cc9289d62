"""Plain, immutable views of Hub rows: what the rest of AgeGuard sees of the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

#: Every endpoint an application may be allowed to call, by name (path after ``/ai/v1/``).
#: ``self-checkout`` covers every path under ``/ai/v1/self-checkout/``.
ENDPOINTS: tuple[str, ...] = (
    "age",
    "antispoofing",
    "age-antispoofing",
    "age-verify",
    "age-antispoofing-verify",
    "self-checkout",
)

ORG_STATUSES: tuple[str, ...] = ("active", "suspended")

DEFAULT_ORG = "default"


def endpoint_name(path: str) -> str:
    """The allow-list name of an endpoint path: ``/ai/v1/self-checkout/age-antispoofing`` → ``self-checkout``.

    Accepts a bare name (``age``), a path relative to ``/ai/v1`` or the full path.
    """
    name = path.strip().strip("/")
    if name.startswith("ai/v1/"):
        name = name[len("ai/v1/") :]
    if name == "self-checkout" or name.startswith("self-checkout/"):
        return "self-checkout"
    return name


@dataclass(frozen=True, slots=True)
class OrgView:
    id: str
    name: str
    status: str
    billing_source_id: str | None
    created: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class AppView:
    sdk_id: str
    name: str
    org_name: str
    org_status: str
    enabled: bool
    public_key_der: bytes
    allowed_endpoints: frozenset[str]
    created: datetime | None = None

    def allows(self, endpoint: str) -> bool:
        """Whether this app may call ``endpoint`` (a name from :data:`ENDPOINTS` or a path)."""
        return endpoint_name(endpoint) in self.allowed_endpoints


@dataclass(frozen=True, slots=True)
class TerminalView:
    sdk_id: str
    terminal_id: str
    label: str | None
    created: datetime


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One API request, as recorded. Never carries image data (SPEC: data minimisation)."""

    endpoint: str
    outcome: str  # "OK" or an error code from the catalogue
    latency_ms: float
    sdk_id: str | None = None
    terminal_id: str | None = None
    session_id: str | None = None
    device: str | None = None
    time: datetime = field(default_factory=_utcnow)


@dataclass(frozen=True, slots=True)
class UsageRow:
    endpoint: str
    terminal_id: str | None
    outcome: str
    count: int
