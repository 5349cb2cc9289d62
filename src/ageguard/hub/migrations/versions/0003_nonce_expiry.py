"""Nonces carry their own expiry: a short TTL for fresh epoch timestamps, a long retention for Java's.

Adds ``nonces.expires_at`` (indexed; the purge deletes by it) and drops the index on ``seen_at``. Rows that
exist when the migration runs get ``expires_at`` = the migration time + 30 days: they may belong to Java
requests accepted in the old compatibility mode, and keeping them longer than needed only costs space.

Revision ID: 0003_nonce_expiry
Revises: 0002_capture_sessions
Create Date: 2025-03-10
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0003_nonce_expiry"
down_revision: str | None = "0002_capture_sessions"
branch_labels: str | None = None
depends_on: str | None = None

#: Expiry given to the rows present at upgrade time, counted from the upgrade.
EXISTING_ROWS_RETENTION = timedelta(days=30)


def upgrade() -> None:
    op.add_column("nonces", sa.Column("expires_at", sa.DateTime(timezone=False), nullable=True))
    expires = (datetime.now(UTC) + EXISTING_ROWS_RETENTION).replace(tzinfo=None)
    rows = sa.table("nonces", sa.column("expires_at", sa.DateTime(timezone=False)))
    op.execute(rows.update().values(expires_at=expires))
    # SQLite cannot add NOT NULL to a column in place: batch mode rebuilds the table there (data kept);
    # on PostgreSQL these are plain ALTER TABLE / CREATE INDEX statements.
    with op.batch_alter_table("nonces") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=False), nullable=False)
        batch.drop_index("ix_nonces_seen_at")
        batch.create_index("ix_nonces_expires_at", ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("nonces") as batch:
        batch.drop_index("ix_nonces_expires_at")
        batch.create_index("ix_nonces_seen_at", ["seen_at"])
        batch.drop_column("expires_at")
