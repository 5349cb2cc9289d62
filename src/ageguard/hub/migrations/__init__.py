"""Alembic environment of the Hub store, run programmatically by :mod:`ageguard.hub.migrate`."""
