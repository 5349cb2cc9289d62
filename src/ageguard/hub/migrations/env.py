"""Alembic env for the Hub. Online runs use the connection (already in a transaction) that
``ageguard.hub.migrate`` passes in ``config.attributes["connection"]``; offline runs (SQL output)
use ``sqlalchemy.url`` from the config."""

from __future__ import annotations

from alembic import context

from ageguard.hub.schema import VERSION_TABLE, metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
