"""``ageguard train age``: AgeGuard's own age head (needs the ``[train]`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ageguard.cli.train import _default_data, train_app


def _default_pool() -> Path:
    return Path(os.environ.get("AGEGUARD_AGE_POOL", Path.home() / ".cache" / "ageguard-data" / "age"))


@train_app.command("age")
def train_age(
    pool: Annotated[
        Path | None,
        typer.Option(
            help="An age pool (images/ + labels.csv: file,age,gender,race,source,identity), as built by "
            "../shared/datasets/recipes/age_pool.py (default $AGEGUARD_AGE_POOL, "
            "else ~/.cache/ageguard-data/age)."
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Folder holding utkface-dev/ (reported, never trained on).")
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="Feature cache (numbers only; default ~/.cache/ageguard-data/age-features)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where age_head.onnx and age_head.json go (serve them with AGEGUARD_AGE_HEAD_DIR)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same model.")] = 0,
    compare: Annotated[
        bool, typer.Option("--compare", help="Train every variant and ship the best on validation.")
    ] = False,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Train nothing: print each network's error per source and age band, and whether the "
            "features tell minors from adults better than the estimated age does.",
        ),
    ] = False,
    source: Annotated[list[str] | None, typer.Option(help="Only this pool source (repeatable).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs (smoke runs).")] = None,
    report: Annotated[Path, typer.Option("--json", help="The JSON report.")] = Path("reports/train-age.json"),
) -> None:
    """Train the age head on the frozen networks' features; report per source on unseen parts."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        typer.echo(f"training needs the [train] extra (pip install -e '.[train]'): {exc}", err=True)
        raise typer.Exit(2) from exc
    from ageguard.train.age import run as age_run
    from ageguard.train.age.features import AgeLabelsError

    pool_dir = pool or _default_pool()
    if not (pool_dir / "labels.csv").exists():
        typer.echo(f"no labels.csv in {pool_dir}: build the pool with recipes/age_pool.py", err=True)
        raise typer.Exit(2)
    evals = {}
    utk_dev = (data or _default_data()) / "utkface-dev"
    if (utk_dev / "labels.csv").exists():
        evals["utkface-dev"] = utk_dev
    cache_dir = cache or Path.home() / ".cache" / "ageguard-data" / "age-features"
    try:
        if probe:
            from ageguard.train.age.probe import markdown as probe_markdown

            found = age_run.probe(pool_dir, evals, cache_dir, typer.echo, sources=source or None)
            age_run.write_report(found, report)
            typer.echo(probe_markdown(found["bands"], found["separability"]))
            typer.echo(f"report written to {report}")
            return
        result = age_run.run(
            pool_dir,
            evals,
            cache_dir,
            out or Path("reports/age-head"),
            seed,
            compare,
            typer.echo,
            sources=source or None,
            epochs=epochs,
        )
    except AgeLabelsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    age_run.write_report(result.report, report)
    typer.echo(age_run.markdown(result.report))
    typer.echo(f"report written to {report}")
