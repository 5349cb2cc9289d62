"""``ageguard models install|list|calibrate-int8``: fetch, convert and verify the model assets."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ageguard.cli._app import app
from ageguard.errors import AgeGuardError

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


@models_app.command("calibrate-int8")
def calibrate_int8(
    datasets: Annotated[
        list[Path],
        typer.Option("--dataset", help="A folder of images/ and labels.csv (repeat); live faces only."),
    ],
    per_set: Annotated[int, typer.Option("--per-set", min=1, help="Faces per folder, evenly spaced.")] = 60,
    out: Annotated[Path | None, typer.Option("--out", help="Ranges file (default: the package's).")] = None,
) -> None:
    """Measure faceres-deep's activation ranges on faces the served pipeline crops, for its int8 variant.

    The default calibration is fas-dev and nuaa-dev (never utkface-dev, on which int8 is evaluated). After
    writing the package's file, pin the new SHA-256 of faceres_deep_int8 in the registry.
    """
    from ageguard.models import store
    from ageguard.models.convert import int8
    from ageguard.settings import get_settings
    from ageguard.vision.age.ensemble import AgeEnsemble
    from ageguard.vision.age.faceres import ASSET, preprocess
    from ageguard.vision.pipeline import Pipeline

    settings = get_settings().model_copy(update={"network_precision": "float32"})
    pipeline = Pipeline(settings)
    ensemble = AgeEnsemble.load(settings)
    files = [path for folder in datasets for path in _calibration_images(folder, per_set)]

    def batches() -> Iterator[dict[str, np.ndarray]]:
        for path in files:
            try:
                image, face = pipeline.face_of(path.read_bytes(), level="low")
            except (AgeGuardError, OSError) as exc:
                typer.echo(f"{path.name}: skipped ({exc})", err=True)
                continue
            yield {"input": preprocess(ensemble.faceres_crops(image, face))}

    target = out or int8.FACERES_RANGES
    count = int8.record_ranges(store.ensure(ASSET).read_bytes(), batches(), target)
    typer.echo(f"{count} faces of {len(files)} images -> {target}")


def _calibration_images(folder: Path, count: int) -> list[Path]:
    """``count`` images of a labelled folder spread over its sorted rows (so over its subjects), live only."""
    with (folder / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("label", "real") == "real"]
    if not rows:
        raise typer.BadParameter(f"{folder}: no live faces in labels.csv", param_hint="--dataset")
    step = max(1, len(rows) // count)
    return [folder / "images" / r["file"] for r in rows[::step][:count]]
