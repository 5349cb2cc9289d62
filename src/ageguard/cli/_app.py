"""The root typer application; each cli module adds its commands to it."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="AgeGuard: self-hosted age estimation.")


@app.command()
def version() -> None:
    """Print the AgeGuard version."""
    from ageguard import __version__

    typer.echo(__version__)
