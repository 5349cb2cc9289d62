"""The Hub's tables (SQLAlchemy Core). Alembic migrations in ``migrations/versions`` create them.

``request_records`` has no column that could hold image data, by design (SPEC: data minimisation).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

#: Name of Alembic's bookkeeping table for the Hub (namespaced so other tools can share the database).
VERSION_TABLE = "ageguard_hub_version"

NAME_LEN = 200
TERMINAL_ID_LEN = 200
SESSION_ID_LEN = 200
NONCE_LEN = 200
ENDPOINT_LEN = 100
OUTCOME_LEN = 64
DEVICE_LEN = 32
SDK_ID_LEN = 64


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Stored as naive UTC on every backend; read back as aware UTC. Naive input is taken as UTC."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("name", sa.String(NAME_LEN), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("billing_source_id", sa.String(NAME_LEN), nullable=True),
    sa.Column("created", UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('active', 'suspended')", name="ck_organisations_status"),
    sa.UniqueConstraint("name", name="uq_organisations_name"),
)

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("sdk_id", sa.Uuid(), primary_key=True),
    sa.Column(
        "org_id",
        sa.Uuid(),
        sa.ForeignKey("organisations.id", name="fk_applications_org"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(NAME_LEN), nullable=False),
    sa.Column("public_key_der", sa.LargeBinary(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("allowed_endpoints", sa.JSON(), nullable=False),
    sa.Column("created", UTCDateTime(), nullable=False),
)

terminals = sa.Table(
    "terminals",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "app_sdk_id",
        sa.Uuid(),
        sa.ForeignKey("applications.sdk_id", name="fk_terminals_app", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("terminal_id", sa.String(TERMINAL_ID_LEN), nullable=False),
    sa.Column("label", sa.String(NAME_LEN), nullable=True),
    sa.Column("created", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("app_sdk_id", "terminal_id", name="uq_terminals_app_terminal"),
)

nonces = sa.Table(
    "nonces",
    metadata,
    sa.Column(
        "app_sdk_id",
        sa.Uuid(),
        sa.ForeignKey("applications.sdk_id", name="fk_nonces_app", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("nonce", sa.String(NONCE_LEN), primary_key=True),
    sa.Column("seen_at", UTCDateTime(), nullable=False),
    # When the claim lapses: seen_at + the TTL the verifier chose for the request (migration 0003). The
    # purge deletes by this index in small batches.
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

request_records = sa.Table(
    "request_records",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("time", UTCDateTime(), nullable=False, index=True),
    # Not a foreign key: requests from unknown or later-removed apps are recorded too.
    sa.Column("app_sdk_id", sa.String(SDK_ID_LEN), nullable=True),
    sa.Column("endpoint", sa.String(ENDPOINT_LEN), nullable=False),
    sa.Column("terminal_id", sa.String(TERMINAL_ID_LEN), nullable=True),
    sa.Column("session_id", sa.String(SESSION_ID_LEN), nullable=True),
    sa.Column("device", sa.String(DEVICE_LEN), nullable=True),
    sa.Column("outcome", sa.String(OUTCOME_LEN), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Index("ix_request_records_app_time", "app_sdk_id", "time"),
    sa.Index("ix_request_records_terminal", "app_sdk_id", "terminal_id"),
)

# Secure face-capture sessions (ageguard.capture; repository in hub/capture_sessions.py, migration 0002).
# A row holds no image: only counters, times and the SHA-256 of the image that passed the final check.
CAPTURE_TOKEN_HASH_LEN = 64

capture_sessions = sa.Table(
    "capture_sessions",
    metadata,
    sa.Column("token_hash", sa.String(CAPTURE_TOKEN_HASH_LEN), primary_key=True),
    sa.Column(
        "app_sdk_id",
        sa.Uuid(),
        sa.ForeignKey("applications.sdk_id", name="fk_capture_sessions_app", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("session_key", sa.LargeBinary(), nullable=False),
    sa.Column("created", UTCDateTime(), nullable=False),
    sa.Column("expires", UTCDateTime(), nullable=False, index=True),
    sa.Column("frames_checked", sa.Integer(), nullable=False),
    sa.Column("good_frames", sa.Integer(), nullable=False),
    sa.Column("final_checks", sa.Integer(), nullable=False),
    sa.Column("first_check_at", UTCDateTime(), nullable=True),
    sa.Column("first_good_at", UTCDateTime(), nullable=True),
    sa.Column("last_check_at", UTCDateTime(), nullable=True),
    sa.Column("capture_sha256", sa.String(64), nullable=True),
    sa.Column("captured_at", UTCDateTime(), nullable=True),
    sa.Column("used_at", UTCDateTime(), nullable=True),
)
