"""ageguard CLI: models commands."""
from ageguard.cli._app import app  # noqa: F401
