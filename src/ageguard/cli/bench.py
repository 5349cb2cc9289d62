"""``ageguard bench``: time each stage and the whole pipeline, one request at a time, on this machine."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ageguard.cli._app import app
from ageguard.eval.sample import sample_capture

NETWORK_PREFIX = "net:"


@app.command()
def bench(
    runs: Annotated[int, typer.Option(help="Timed runs per image.")] = 30,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.")] = 3,
    antispoofing: Annotated[bool, typer.Option("--antispoofing", help="Include the liveness model.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Last stdout line: a JSON summary.")] = False,
) -> None:
    """p50/p95 per stage over a 1280x720 JPEG q95 and a 1920x1080 PNG, one face each."""
    from ageguard.vision.pipeline import Pipeline

    pipeline = Pipeline()
    cases = {
        "1280x720 JPEG q95": sample_capture(1280, 720, "JPEG", 95),
        "1920x1080 PNG": sample_capture(1920, 1080, "PNG"),
    }
    results = {name: _time_case(pipeline, data, runs, warmup, antispoofing) for name, data in cases.items()}
    flops = pipeline.model_flops()
    console = Console(stderr=as_json)
    for name, result in results.items():
        console.print(_table(name, result))
    console.print(_flops_table(flops, results["1280x720 JPEG q95"]))
    if as_json:
        main = results["1280x720 JPEG q95"]
        summary = {
            "p50_ms": main["p50_ms"],
            "p95_ms": main["p95_ms"],
            "models_ms": main["models_ms"],
            "stages": main["stages"],
            "networks": main["networks"],
            "gflops": {name: round(value / 1e9, 3) for name, value in flops.items()},
            "cases": results,
        }
        typer.echo(json.dumps(summary))


def _time_case(pipeline: Any, data: bytes, runs: int, warmup: int, liveness: bool) -> dict[str, Any]:
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    for index in range(warmup + runs):
        start = time.perf_counter()
        analysis = pipeline.analyse(data, level="normal", age=True, liveness=liveness)
        elapsed = (time.perf_counter() - start) * 1000.0
        if index < warmup:
            continue
        totals.append(elapsed)
        for stage, ms in analysis.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    medians = {stage: round(float(np.median(values)), 2) for stage, values in stages.items()}
    networks = {k[len(NETWORK_PREFIX) :]: v for k, v in medians.items() if k.startswith(NETWORK_PREFIX)}
    return {
        "p50_ms": round(float(np.percentile(totals, 50)), 2),
        "p95_ms": round(float(np.percentile(totals, 95)), 2),
        "models_ms": round(sum(networks.values()), 2),
        "stages": {k: v for k, v in medians.items() if not k.startswith(NETWORK_PREFIX)},
        "networks": networks,
        "runs": runs,
    }


def _table(name: str, result: dict[str, Any]) -> Table:
    table = Table(title=f"{name}: whole p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms")
    table.add_column("stage")
    table.add_column("median ms", justify="right")
    for stage, ms in result["stages"].items():
        table.add_row(stage, f"{ms:.2f}")
    for net, ms in result["networks"].items():
        table.add_row(f"  network {net}", f"{ms:.2f}")
    return table


def _flops_table(flops: dict[str, float], result: dict[str, Any]) -> Table:
    table = Table(title="models: work per request and achieved throughput")
    table.add_column("model")
    table.add_column("GFLOPs", justify="right")
    table.add_column("median ms", justify="right")
    table.add_column("GFLOP/s", justify="right")
    for name, value in flops.items():
        ms = result["networks"].get(name)
        rate = f"{value / 1e6 / ms:.1f}" if ms else "-"
        table.add_row(name, f"{value / 1e9:.3f}", f"{ms:.2f}" if ms else "-", rate)
    return table
