"""Hub schema revisions (Alembic skips this file)."""
