"""``ageguard models install|list``: fetch, convert and verify the model assets."""

from __future__ import annotations

import json

import typer

from ageguard.cli._app import app

models_app = typer.Typer(no_args_is_help=True, help="Install and list the model assets.")
app.add_typer(models_app, name="models")


@models_app.command("install")
def install(
    only: str | None = typer.Option(None, "--only", help="Install just this model (see `models list`)."),
) -> None:
    """Download, convert and verify the models into AGEGUARD_MODEL_DIR (idempotent)."""
    from ageguard.models import registry, store

    if only is not None and only not in registry.ASSETS:
        typer.echo(f"unknown model {only!r}; known: {', '.join(registry.ASSETS)}", err=True)
        raise typer.Exit(2)

    def progress(name: str, stage: str) -> None:
        typer.echo(f"{name}: {stage}", err=True)

    try:
        paths = store.install_all(progress, only=only)
    except store.ModelStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for name, path in paths.items():
        typer.echo(f"{name}\t{path}")


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Show each model: name, source version, licence, whether installed and verified, path."""
    from ageguard.models import registry, store

    rows = []
    for asset in registry.ASSETS.values():
        rows.append(
            {
                "name": asset.name,
                "version": asset.source.version,
                "source": asset.source.package,
                "licence": asset.licence,
                "installed": store.is_installed(asset.name),
                "path": str(store.model_path(asset.name)),
            }
        )
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    typer.echo("name\tversion\tsource\tlicence\tinstalled\tpath")
    for row in rows:
        typer.echo("\t".join("yes" if v is True else "no" if v is False else str(v) for v in row.values()))
