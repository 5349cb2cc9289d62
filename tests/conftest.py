"""Shared pytest configuration: keep additions small; fixtures live in their own modules, imported here."""

from hub_fixtures import hub, hub_env, hub_url  # noqa: F401  (Hub store database fixtures)
