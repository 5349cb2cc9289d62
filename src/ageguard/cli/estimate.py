"""ageguard CLI: estimate commands."""
from ageguard.cli._app import app  # noqa: F401
