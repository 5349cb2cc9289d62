"""The ``ageguard`` command line. Each module below registers its own commands on ``app``."""

from ageguard.cli import (  # noqa: F401
    admin,
    bench,
    estimate,
    evaluate,
    models,
    nonces,
    request,
    serve,
    train,
    train_age,
)
from ageguard.cli._app import app


def main() -> None:
    app()
