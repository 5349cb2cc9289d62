"""``ageguard bench``: time each stage and the whole pipeline, one request at a time, on this machine."""

from __future__ import annotations

import json
import time
from pathlib import Path
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
    http: Annotated[
        bool, typer.Option("--http", help="End to end: a real `ageguard serve` driven by a load process.")
    ] = False,
    concurrency: Annotated[
        str, typer.Option(help="--http: concurrency levels, comma-separated.")
    ] = "1,2,4,8",
    requests: Annotated[
        int, typer.Option(min=1, help="--http: requests per endpoint and level, at most.")
    ] = 48,
    seconds: Annotated[
        float, typer.Option(min=1.0, help="--http: seconds per endpoint and level, at most.")
    ] = 30.0,
    workers: Annotated[
        int | None, typer.Option(min=1, help="--http: server worker processes (default: serve's).")
    ] = None,
    endpoints: Annotated[
        str, typer.Option(help="--http: endpoints, comma-separated.")
    ] = "age,age-antispoofing",
    database_url: Annotated[
        str | None,
        typer.Option(help="--http: the server's Hub database (default: SQLite in a throwaway home)."),
    ] = None,
    image: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="--http: send this image instead.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="--http: write requests/s and p95 against concurrency to this PNG.")
    ] = None,
) -> None:
    """p50/p95 per stage over a 1280x720 JPEG q95 and a 1920x1080 PNG, one face each.

    With --http: networks-only time, pipeline p50 and HTTP p50/p95 and requests/s at each concurrency
    for /age and /age-antispoofing, through a real server (docs/performance.md).
    """
    if http:
        _bench_http(
            concurrency=concurrency,
            requests=requests,
            seconds=seconds,
            workers=workers,
            endpoints=endpoints,
            database_url=database_url,
            image=image,
            plot=plot,
            runs=runs,
            warmup=warmup,
            as_json=as_json,
        )
        return
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


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _bench_http(
    *,
    concurrency: str,
    requests: int,
    seconds: float,
    workers: int | None,
    endpoints: str,
    database_url: str | None,
    image: Path | None,
    plot: Path | None,
    runs: int,
    warmup: int,
    as_json: bool,
) -> None:
    from ageguard.eval.httpbench import ENDPOINTS, HttpBenchConfig, plot_http, run_http_bench

    try:
        levels = tuple(int(c) for c in _csv(concurrency))
    except ValueError as exc:
        raise typer.BadParameter("concurrency: comma-separated integers", param_hint="--concurrency") from exc
    if not levels or min(levels) < 1:
        raise typer.BadParameter("concurrency: integers >= 1", param_hint="--concurrency")
    names = tuple(_csv(endpoints))
    unknown = [n for n in names if n not in ENDPOINTS]
    if unknown or not names:
        raise typer.BadParameter(f"endpoints: some of {', '.join(ENDPOINTS)}", param_hint="--endpoints")
    data = image.read_bytes() if image is not None else sample_capture(1280, 720, "JPEG", 95)
    config = HttpBenchConfig(
        concurrency=levels,
        requests=requests,
        max_seconds=seconds,
        pipeline_runs=runs,
        pipeline_warmup=warmup,
        workers=workers,
        endpoints=names,
        database_url=database_url,
    )
    console = Console(stderr=True)
    summary = run_http_bench(data, config, log=lambda line: console.print(line, highlight=False))
    Console(stderr=as_json, width=max(console.width, 120)).print(_http_table(summary))
    if plot is not None:
        plot_http(summary, plot)
        console.print(f"wrote {plot}")
    if as_json:
        typer.echo(json.dumps(summary))


def _http_table(summary: dict[str, Any]) -> Table:
    http = summary["http"]
    table = Table(
        title=f"HTTP: {http['cores']} cores, serve --workers {http['workers']}, "
        f"1-min load average before {http['loadavg_before'][0]} (a loaded machine's figures are not figures)"
    )
    for column in ("endpoint", "networks ms", "pipeline p50", "c", "HTTP p50", "p95", "req/s", "non-200"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    captions = []
    for name, entry in http["endpoints"].items():
        for index, level in enumerate(entry["levels"]):
            first = index == 0
            table.add_row(
                f"/{name}" if first else "",
                f"{entry['networks_ms']:.1f}" if first else "",
                f"{entry['pipeline_p50_ms']:.1f}" if first else "",
                str(level["concurrency"]),
                f"{level['p50_ms']:.1f}",
                f"{level['p95_ms']:.1f}",
                f"{level['rps']:.2f}",
                str(level["requests"] - level["ok"]),
                end_section=index == len(entry["levels"]) - 1,
            )
        r = entry["ratios"]
        captions.append(
            f"/{name}: pipeline/networks {r.get('pipeline_over_networks')}, "
            f"HTTP(c=1)/pipeline {r.get('http_c1_over_pipeline')} "
            f"({r.get('http_c1_minus_pipeline_ms'):+} ms), "
            f"req/s(c={r.get('rps_concurrency')}) / floor {r.get('rps_over_floor')} "
            f"(floor {r['floor_rps']} req/s)"
        )
    table.caption = "\n".join(captions)
    return table
