"""``ageguard estimate``: age (and optionally liveness) for files and folders, in bulk."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ageguard.cli._app import app
from ageguard.vision.batch import FileResult, Job, analyse_files, iter_image_files
from ageguard.vision.types import AssuranceLevel, ValidationLevel


@app.command()
def estimate(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per file per line on stdout.")
    ] = False,
    validation: Annotated[str, typer.Option(help="Image requirements: normal or low.")] = "normal",
    antispoofing: Annotated[bool, typer.Option("--antispoofing", help="Add the liveness verdict.")] = False,
    level: Annotated[
        str, typer.Option(help="Anti-spoofing level of assurance: low, medium, high.")
    ] = "medium",
    workers: Annotated[int, typer.Option(help="Worker processes (default: one per core).")] = 0,
) -> None:
    """Estimate the age of the face in each image."""
    if validation not in ("normal", "low"):
        raise typer.BadParameter("must be normal or low", param_hint="--validation")
    if level not in ("low", "medium", "high"):
        raise typer.BadParameter("must be low, medium or high", param_hint="--level")
    files = list(iter_image_files(paths))
    if not files:
        typer.echo("no image files found", err=True)
        raise typer.Exit(2)
    job = Job(level=_validation(validation), liveness=antispoofing, assurance=_assurance(level))
    results = analyse_files(files, job, workers or None)
    printer = _print_json if as_json else _print_table
    failures = printer(results, len(files))
    if failures == len(files):
        raise typer.Exit(1)


def _validation(value: str) -> ValidationLevel:
    return "low" if value == "low" else "normal"


def _assurance(value: str) -> AssuranceLevel:
    return "low" if value == "low" else "high" if value == "high" else "medium"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]estimating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _print_json(results: Iterable[FileResult], total: int) -> int:
    failures = 0
    with _progress(Console(stderr=True)) as progress:
        task = progress.add_task("estimate", total=total)
        for result in results:
            failures += result.error_code is not None
            sys.stdout.write(json.dumps(result.to_json()) + "\n")
            sys.stdout.flush()
            progress.advance(task)
    return failures


def _print_table(results: Iterable[FileResult], total: int) -> int:
    console = Console()
    failures = 0
    with _progress(console) as progress:
        task = progress.add_task("estimate", total=total)
        for result in results:
            if result.error_code:
                failures += 1
                progress.console.print(
                    f"{result.file}: [red]{result.error_code}[/red] {result.error_message}"
                )
            else:
                verdict = f"  {result.prediction} ({result.score:.2f})" if result.prediction else ""
                progress.console.print(f"{result.file}: age {result.age:.1f} ± {result.st_dev:.1f}{verdict}")
            progress.advance(task)
    return failures
