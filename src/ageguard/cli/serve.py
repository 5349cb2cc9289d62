"""ageguard CLI: serve commands."""
from ageguard.cli._app import app  # noqa: F401
