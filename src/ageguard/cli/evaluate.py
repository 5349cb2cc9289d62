"""``ageguard eval age|antispoof``: accuracy on a labelled folder, as a table and a JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from ageguard.cli._app import app
from ageguard.cli.train import eval_antispoof
from ageguard.eval import age as age_eval
from ageguard.vision.batch import Job, analyse_files

eval_app = typer.Typer(no_args_is_help=True, help="Measure accuracy on labelled data.")
app.add_typer(eval_app, name="eval")


@eval_app.command("age")
def eval_age(
    images: Annotated[Path, typer.Option(help="Folder of face images named as in the labels.")],
    labels: Annotated[Path, typer.Option(help="CSV with columns file,age[,gender,race].")],
    predictions: Annotated[
        Path | None, typer.Option(help="Reuse `ageguard estimate --json` output instead of estimating.")
    ] = None,
    validation: Annotated[str, typer.Option(help="Image requirements: normal or low.")] = "low",
    report: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")] = Path(
        "reports/eval-age.json"
    ),
    workers: Annotated[int, typer.Option(help="Worker processes (default: one per core).")] = 0,
    split: Annotated[
        str | None,
        typer.Option(help="Only this part of a pool (train, val or test; `ageguard train age` splits)."),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Also draw estimated vs true age into this PNG.")] = None,
) -> None:
    """MAE per age band (per source where the labels say), gender and race; threshold errors; st_dev
    coverage per band; the share of true 31+ passing an over-18 check."""
    truth = age_eval.read_labels(labels)
    if split is not None:
        from ageguard.train.age.splits import split_of

        truth = {f: lab for f, lab in truth.items() if split_of(lab.source, f, lab.identity) == split}
    if predictions is not None:
        results = [json.loads(line) for line in predictions.read_text().splitlines() if line.strip()]
    else:
        files = [images / name for name in sorted(truth)]
        job = Job(level="low" if validation == "low" else "normal")
        results = [r.to_json() for r in analyse_files(files, job, workers or None)]
    rows, failures = age_eval.join(truth, results)
    if not rows:
        typer.echo("no labelled image could be scored", err=True)
        raise typer.Exit(1)
    summary = age_eval.by_source(rows, failures)
    Console().print(Markdown(age_eval.markdown(summary)))
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(summary, indent=2) + "\n")
    typer.echo(f"report written to {report}")
    if plot is not None:
        from ageguard.eval.age_plot import plot_estimates

        plot_estimates(rows, plot, f"AgeGuard age estimate: {labels.parent.name} ({len(rows)} faces)")
        typer.echo(f"plot written to {plot}")


# `ageguard eval antispoof` is the liveness evaluation that lives with its training code (cli/train.py).
eval_app.command("antispoof")(eval_antispoof)
