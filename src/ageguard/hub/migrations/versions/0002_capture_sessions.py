"""Secure face-capture sessions (ageguard.capture): one row per session, no image data.

Revision ID: 0002_capture_sessions
Revises: 0001_initial
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_capture_sessions"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "capture_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "app_sdk_id",
            sa.Uuid(),
            sa.ForeignKey("applications.sdk_id", name="fk_capture_sessions_app", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("session_key", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=False), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=False), nullable=False),
        sa.Column("frames_checked", sa.Integer(), nullable=False),
        sa.Column("good_frames", sa.Integer(), nullable=False),
        sa.Column("final_checks", sa.Integer(), nullable=False),
        sa.Column("first_check_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("first_good_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("last_check_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("capture_sha256", sa.String(64), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=False), nullable=True),
    )
    op.create_index("ix_capture_sessions_app_sdk_id", "capture_sessions", ["app_sdk_id"])
    op.create_index("ix_capture_sessions_expires", "capture_sessions", ["expires"])


def downgrade() -> None:
    op.drop_table("capture_sessions")
