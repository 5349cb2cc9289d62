"""The ``ageguard`` command line. Each module below registers its own commands on ``app``."""

from ageguard.cli import admin, bench, estimate, evaluate, models, request, serve, train, train_age  # noqa: F401
from ageguard.cli._app import app


def main() -> None:
    app()
