"""Initial Hub schema: organisations, applications, terminals, nonces, request records.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("billing_source_id", sa.String(200), nullable=True),
        sa.Column("created", sa.DateTime(timezone=False), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="ck_organisations_status"),
        sa.UniqueConstraint("name", name="uq_organisations_name"),
    )
    op.create_table(
        "applications",
        sa.Column("sdk_id", sa.Uuid(), primary_key=True),
        sa.Column(
            "org_id",
            sa.Uuid(),
            sa.ForeignKey("organisations.id", name="fk_applications_org"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("allowed_endpoints", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_index("ix_applications_org_id", "applications", ["org_id"])
    op.create_table(
        "terminals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "app_sdk_id",
            sa.Uuid(),
            sa.ForeignKey("applications.sdk_id", name="fk_terminals_app", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created", sa.DateTime(timezone=False), nullable=False),
        sa.UniqueConstraint("app_sdk_id", "terminal_id", name="uq_terminals_app_terminal"),
    )
    op.create_table(
        "nonces",
        sa.Column(
            "app_sdk_id",
            sa.Uuid(),
            sa.ForeignKey("applications.sdk_id", name="fk_nonces_app", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("nonce", sa.String(200), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_index("ix_nonces_seen_at", "nonces", ["seen_at"])
    op.create_table(
        "request_records",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("time", sa.DateTime(timezone=False), nullable=False),
        sa.Column("app_sdk_id", sa.String(64), nullable=True),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("terminal_id", sa.String(200), nullable=True),
        sa.Column("session_id", sa.String(200), nullable=True),
        sa.Column("device", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_request_records_time", "request_records", ["time"])
    op.create_index("ix_request_records_app_time", "request_records", ["app_sdk_id", "time"])
    op.create_index("ix_request_records_terminal", "request_records", ["app_sdk_id", "terminal_id"])


def downgrade() -> None:
    op.drop_table("request_records")
    op.drop_table("nonces")
    op.drop_table("terminals")
    op.drop_table("applications")
    op.drop_table("organisations")
