"""``ageguard bench --http``: the whole service measured end to end over HTTP, beside its floor.

In one run: a real ``ageguard serve`` starts on a free loopback port with a throwaway
``AGEGUARD_HOME`` (its own SQLite Hub unless a database URL is given) and one application; requests are
signed beforehand exactly as the Yoti SDKs sign them (:mod:`ageguard.signing`) and sent by a separate
load process (:mod:`ageguard.eval.httpload`) at each concurrency, bounded by a request count and a time.
At concurrency 1 the requests go in blocks that alternate with blocks of the pipeline run in this process
(networks only, and the whole pipeline, one request at a time), so that both see the machine alike.

The floor is the networks: ``cores / networks time`` requests/s if nothing but the networks ran, one
network thread per request. The three ratios the issue asks for compare the service to that floor:
``pipeline_over_networks`` (pipeline p50 / networks), ``http_c1_over_pipeline`` (HTTP p50 at concurrency 1
/ pipeline p50, plus the difference in ms) and ``rps_over_floor`` (requests/s at the highest concurrency /
(cores / networks)). Every answer that is not 200 is counted by status and error code.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ageguard import signing
from ageguard.client import API_PATH

#: Endpoints the benchmark can drive (path below /ai/v1 -> what the pipeline runs: age, liveness).
ENDPOINTS: dict[str, tuple[bool, bool]] = {
    "age": (True, False),
    "age-antispoofing": (True, True),
}
NETWORK_PREFIX = "net:"
# Requests (and about as many pipeline runs) per block of the interleaved concurrency-1 measurement.
PAIRED_BLOCK = 8

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class HttpBenchConfig:
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    requests: int = 48  # at most, per endpoint and concurrency
    max_seconds: float = 30.0  # at most, per endpoint and concurrency
    warmup: int = 3  # untimed requests per server worker before each endpoint
    pipeline_runs: int = 20
    pipeline_warmup: int = 3
    workers: int | None = None  # None: ``ageguard serve``'s default for this machine
    endpoints: tuple[str, ...] = ("age", "age-antispoofing")
    database_url: str | None = None
    startup_timeout_s: float = 180.0


# ------------------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 2) if values else float("nan")


def summarise_level(load: dict[str, Any]) -> dict[str, Any]:
    """p50/p95 of the 200 answers, requests/s over the level's span, statuses and error codes counted."""
    rows = load["results"]
    ok = [r for r in rows if r["status"] == 200]
    latencies = [r["latency_ms"] for r in ok]
    if rows:
        span_s = max(r["start_s"] + r["latency_ms"] / 1000.0 for r in rows) - min(r["start_s"] for r in rows)
    else:
        span_s = 0.0
    statuses = Counter(str(r["status"]) for r in rows)
    errors = Counter(f"{r['status']} {r['error']}" for r in rows if r["status"] != 200)
    return {
        "concurrency": int(load["concurrency"]),
        "requests": len(rows),
        "ok": len(ok),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else float("nan"),
        "rps": round(len(ok) / span_s, 2) if span_s > 0 else 0.0,
        "seconds": round(span_s, 2),
        "statuses": dict(sorted(statuses.items())),
        "errors": dict(sorted(errors.items())),
    }


def ratios(
    networks_ms: float, pipeline_p50_ms: float, levels: list[dict[str, Any]], cores: int
) -> dict[str, Any]:
    """The issue's three ratios (and the floor they are taken against)."""
    floor_rps = cores / (networks_ms / 1000.0) if networks_ms > 0 else float("nan")
    by_c = {level["concurrency"]: level for level in levels}
    c1 = by_c.get(1)
    top = by_c[max(by_c)] if by_c else None
    out: dict[str, Any] = {
        "floor_rps": round(floor_rps, 2),
        "pipeline_over_networks": round(pipeline_p50_ms / networks_ms, 3) if networks_ms > 0 else None,
    }
    if c1 is not None and pipeline_p50_ms > 0:
        out["http_c1_over_pipeline"] = round(c1["p50_ms"] / pipeline_p50_ms, 3)
        out["http_c1_minus_pipeline_ms"] = round(c1["p50_ms"] - pipeline_p50_ms, 2)
    if top is not None:
        out["rps_concurrency"] = top["concurrency"]
        out["rps_over_floor"] = round(top["rps"] / floor_rps, 3) if floor_rps > 0 else None
    return out


def acceptance(r: dict[str, Any], non_200: int) -> dict[str, bool]:
    """The issue's acceptance lines, each True or False (on a quiet machine only do they mean anything)."""
    return {
        "pipeline_le_1.25x_networks": bool((r.get("pipeline_over_networks") or 99) <= 1.25),
        "http_c1_le_pipeline_plus_10ms": bool(r.get("http_c1_minus_pipeline_ms", 99.0) <= 10.0),
        "rps_ge_0.85x_floor": bool((r.get("rps_over_floor") or 0.0) >= 0.85),
        "no_non_200": non_200 == 0,
    }


# ------------------------------------------------------------------------------------- pipeline


class PipelineSamples:
    """Whole-pipeline and per-network times of runs in this process, gathered over several calls."""

    def __init__(self, pipeline: Any, data: bytes, liveness: bool) -> None:
        self.pipeline, self.data, self.liveness = pipeline, data, liveness
        self.totals: list[float] = []
        self.nets: dict[str, list[float]] = {}
        self.stages: dict[str, list[float]] = {}
        self.answer: dict[str, Any] = {}

    def run(self, count: int, *, timed: bool = True) -> None:
        for _ in range(count):
            start = time.perf_counter()
            analysis = self.pipeline.analyse(self.data, level="normal", age=True, liveness=self.liveness)
            elapsed = (time.perf_counter() - start) * 1000.0
            if not timed:
                continue
            self.totals.append(elapsed)
            for key, ms in analysis.timings_ms.items():
                (self.nets if key.startswith(NETWORK_PREFIX) else self.stages).setdefault(key, []).append(ms)
            self.answer = _analysis_answer(analysis)

    def summary(self) -> dict[str, Any]:
        """Networks-only ms (sum of the median time of each network a request runs) and the pipeline p50/p95.

        The pipeline times every network it runs itself (``net:*`` timings), on the inputs it gives it.
        """
        networks = {k[len(NETWORK_PREFIX) :]: round(float(np.median(v)), 2) for k, v in self.nets.items()}
        return {
            "networks_ms": round(sum(networks.values()), 2),
            "networks": networks,
            "pipeline_p50_ms": percentile(self.totals, 50),
            "pipeline_p95_ms": percentile(self.totals, 95),
            "pipeline_runs": len(self.totals),
            "stages": {k: round(float(np.median(v)), 2) for k, v in self.stages.items()},
            "answer": self.answer,
        }


def _analysis_answer(analysis: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    if analysis.age is not None:
        answer["age"] = round(float(analysis.age.age), 2)
        answer["st_dev"] = round(float(analysis.age.st_dev), 2)
    if analysis.liveness is not None:
        answer["prediction"] = analysis.liveness.prediction
    return answer


def paired_c1(
    samples: PipelineSamples,
    send: Callable[[int, float], dict[str, Any]],
    *,
    requests: int,
    pipeline_runs: int,
    max_seconds: float,
    block: int = PAIRED_BLOCK,
) -> dict[str, Any]:
    """Concurrency 1 over HTTP and the pipeline in this process, in alternating blocks.

    A shared machine's speed drifts by 10-20% over tens of seconds; measured one after the other, the
    difference of the two would be that drift as much as the server's own cost. ``send(count, seconds)``
    drives ``count`` requests at concurrency 1 and returns the load's result; the rows of all blocks are
    merged, and requests/s is taken over the blocks' own spans.
    """
    blocks = max(1, math.ceil(requests / block))
    runs_per_block = max(1, math.ceil(pipeline_runs / blocks))
    deadline = time.monotonic() + max_seconds
    rows: list[dict[str, Any]] = []
    span_s = 0.0
    done = 0
    while done < blocks:
        left = deadline - time.monotonic()
        if done and left <= 0:
            break
        samples.run(runs_per_block)
        load = send(min(block, requests - done * block), max(left, 1.0))
        span_s += summarise_level(load)["seconds"]
        rows += load["results"]
        done += 1
    level = summarise_level({"concurrency": 1, "results": rows})
    level["rps"] = round(level["ok"] / span_s, 2) if span_s > 0 else 0.0
    level["seconds"] = round(span_s, 2)
    level["paired_blocks"] = done
    return level


# ------------------------------------------------------------------------------------- server


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def create_application(database_url: str) -> tuple[str, Any]:
    """A fresh application (all endpoints allowed) and its private key."""
    from ageguard.hub import Hub
    from ageguard.hub.keys import der_of, generate_private_key

    key = generate_private_key()
    with Hub(database_url) as hub:
        view = hub.create_app(f"bench-{uuid.uuid4().hex[:8]}", None, der_of(key.public_key()))
    return view.sdk_id, key


@contextmanager
def running_server(
    home: Path, port: int, workers: int | None, database_url: str | None, timeout_s: float, log: Log
) -> Iterator[str]:
    """``ageguard serve`` in its own process group on ``port``; yields its base URL once healthy."""
    env = dict(os.environ)
    env["AGEGUARD_HOME"] = str(home)
    env.pop("AGEGUARD_DATABASE_URL", None)
    if database_url is not None:
        env["AGEGUARD_DATABASE_URL"] = database_url
    command = [sys.executable, "-c", "from ageguard.cli import main; main()", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if workers is not None:
        command += ["--workers", str(workers)]
    log_path = home / "serve.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout_s, log_path)
        yield url
    finally:
        stop_process(proc)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ageguard serve exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"ageguard serve was not healthy within {timeout_s:.0f} s:\n{_tail(log_path)}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------------------------- load


def sign_requests(key: Any, sdk_id: str, endpoint: str, body: bytes, count: int) -> list[dict[str, str]]:
    """``count`` requests signed as the SDKs sign them: fresh nonce and ms timestamp, path after the base."""
    out = []
    for _ in range(count):
        path_and_query = f"/{endpoint}?nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"
        out.append(
            {
                "sdk_id": sdk_id,
                "url_path": API_PATH + path_and_query,
                "digest": signing.sign(key, "POST", path_and_query, body),
            }
        )
    return out


def drive(
    host: str,
    port: int,
    body_file: Path,
    requests: list[dict[str, str]],
    concurrency: int,
    max_seconds: float,
    work: Path,
) -> dict[str, Any]:
    """One level of load from a separate process (``python -m ageguard.eval.httpload``)."""
    job = {
        "host": host,
        "port": port,
        "body_file": str(body_file),
        "requests": requests,
        "concurrency": concurrency,
        "max_seconds": max_seconds,
    }
    job_file = work / f"job-{uuid.uuid4().hex}.json"
    job_file.write_text(json.dumps(job))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ageguard.eval.httpload", str(job_file)],
            capture_output=True,
            check=False,
            timeout=max_seconds + 180.0,
        )
    finally:
        job_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"load process failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def request_body(image: bytes) -> bytes:
    """What an SDK sends: ``{"img": base64}``."""
    return json.dumps({"img": base64.b64encode(image).decode("ascii")}).encode("utf-8")


# ------------------------------------------------------------------------------------- the run


def served_workers(workers: int | None) -> int:
    if workers is not None:
        return workers
    from ageguard.cli.serve import default_workers

    return default_workers()


def run_http_bench(image: bytes, config: HttpBenchConfig, log: Log) -> dict[str, Any]:
    """The whole measurement; the result is what ``--json`` prints (see the module docstring)."""
    from ageguard.settings import get_settings
    from ageguard.vision.pipeline import Pipeline

    cores = os.cpu_count() or 1
    settings = get_settings()
    load_before = os.getloadavg()
    pipeline = Pipeline(settings)
    pipeline.load(liveness="age-antispoofing" in config.endpoints)

    home = Path(tempfile.mkdtemp(prefix="ageguard-bench-"))
    try:
        database_url = config.database_url or f"sqlite:///{home / 'ageguard.db'}"
        sdk_id, key = create_application(database_url)
        body = request_body(image)
        body_file = home / "body.json"
        body_file.write_bytes(body)
        port = free_port()
        workers = served_workers(config.workers)
        log(f"ageguard serve --workers {workers} on 127.0.0.1:{port} (home {home}) ...")
        endpoints: dict[str, Any] = {}
        non_200 = 0
        with running_server(home, port, config.workers, config.database_url, config.startup_timeout_s, log):
            for name in config.endpoints:
                warm = _warm_up(port, body_file, key, sdk_id, name, body, workers, config, home)

                def send(count: int, seconds: float, concurrency: int = 1, name: str = name) -> Any:
                    signed = sign_requests(key, sdk_id, name, body, count)
                    return drive("127.0.0.1", port, body_file, signed, concurrency, seconds, home)

                samples = PipelineSamples(pipeline, image, liveness=ENDPOINTS[name][1])
                measured = _measure_endpoint(name, samples, send, config, cores, log)
                endpoints[name] = {**measured, "warmup_statuses": warm}
                non_200 += sum(lv["requests"] - lv["ok"] for lv in endpoints[name]["levels"])
        for entry in endpoints.values():
            failed = sum(lv["requests"] - lv["ok"] for lv in entry["levels"])
            entry["acceptance"] = acceptance(entry["ratios"], failed)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "http": {
            "cores": cores,
            "workers": workers,
            "inference_threads": settings.inference_threads,
            "database": "sqlite" if config.database_url is None else _scheme(config.database_url),
            "image_bytes": len(image),
            "body_bytes": len(body),
            "concurrency": list(config.concurrency),
            "endpoints": endpoints,
            "non_200": non_200,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
    }


Send = Callable[..., dict[str, Any]]  # (count, seconds[, concurrency]) -> the load process's result


def _measure_endpoint(
    name: str, samples: PipelineSamples, send: Send, config: HttpBenchConfig, cores: int, log: Log
) -> dict[str, Any]:
    """The pipeline's figures, every concurrency level and the ratios, for one endpoint."""
    samples.run(config.pipeline_warmup, timed=False)
    levels = []
    sample: dict[str, Any] = {}

    def sampled(*args: Any) -> dict[str, Any]:
        load = send(*args)
        if not sample:
            sample.update(load["sample"])
        return load

    for concurrency in config.concurrency:
        if concurrency == 1:
            log(f"/{name} c=1 over HTTP, in blocks alternating with the pipeline in this process ...")
            level = paired_c1(
                samples,
                sampled,
                requests=config.requests,
                pipeline_runs=config.pipeline_runs,
                max_seconds=config.max_seconds,
            )
        else:
            count = max(config.requests, concurrency)
            level = summarise_level(sampled(count, config.max_seconds, concurrency))
        levels.append(level)
        log(
            f"/{name} c={concurrency}: {level['ok']}/{level['requests']} ok, "
            f"p50 {level['p50_ms']} ms, p95 {level['p95_ms']} ms, {level['rps']} req/s"
        )
    if not samples.totals:  # no concurrency-1 level: time the pipeline on its own
        samples.run(config.pipeline_runs)
    figures = samples.summary()
    return {
        **figures,
        "levels": levels,
        "ratios": ratios(figures["networks_ms"], figures["pipeline_p50_ms"], levels, cores),
        "http_answer": _answer(sample),
    }


def _warm_up(
    port: int,
    body_file: Path,
    key: Any,
    sdk_id: str,
    name: str,
    body: bytes,
    workers: int,
    config: HttpBenchConfig,
    work: Path,
) -> dict[str, int]:
    """Untimed requests until one round answers 200 throughout (every worker has loaded its models)."""
    statuses: Counter[str] = Counter()
    concurrency = max(2 * workers, 2)
    for _round in range(10):
        signed = sign_requests(key, sdk_id, name, body, max(config.warmup * workers, concurrency))
        load = drive("127.0.0.1", port, body_file, signed, concurrency, config.max_seconds, work)
        round_statuses = Counter(str(r["status"]) for r in load["results"])
        statuses.update(round_statuses)
        if set(round_statuses) == {"200"}:
            break
        time.sleep(1.0)
    return dict(sorted(statuses.items()))


def _answer(sample: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    age = sample.get("age")
    if isinstance(age, dict) and "age" in age:
        out["age"] = round(float(age["age"]), 2)
        out["st_dev"] = round(float(age["st_dev"]), 2)
    spoof = sample.get("antispoofing")
    if isinstance(spoof, dict):
        out["prediction"] = spoof.get("prediction")
    return out


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


# ------------------------------------------------------------------------------------- plot


def plot_http(summary: dict[str, Any], path: Path) -> None:
    """Requests/s and p95 latency against concurrency, one line per endpoint, the floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    http = summary["http"]
    fig, (ax_rps, ax_lat) = plt.subplots(1, 2, figsize=(10, 4))
    for index, (name, entry) in enumerate(http["endpoints"].items()):
        colour = f"C{index}"
        cs = [lv["concurrency"] for lv in entry["levels"]]
        ax_rps.plot(cs, [lv["rps"] for lv in entry["levels"]], "o-", color=colour, label=f"/{name}")
        ax_rps.axhline(
            entry["ratios"]["floor_rps"], color=colour, ls="--", lw=1, label=f"/{name} networks floor"
        )
        ax_lat.plot(cs, [lv["p95_ms"] for lv in entry["levels"]], "o-", color=colour, label=f"/{name} p95")
        ax_lat.plot(cs, [lv["p50_ms"] for lv in entry["levels"]], "o:", color=colour, label=f"/{name} p50")
    for ax in (ax_rps, ax_lat):
        ax.set_xscale("log", base=2)
        ax.set_xticks(http["concurrency"], [str(c) for c in http["concurrency"]])
        ax.set_xlabel("concurrent requests")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_rps.set_ylabel("requests/s")
    ax_rps.set_ylim(bottom=0)
    ax_lat.set_ylabel("latency ms")
    ax_lat.set_ylim(bottom=0)
    load = http.get("loadavg_before", ["?"])[0]
    fig.suptitle(
        f"ageguard bench --http: {http['cores']} cores, serve --workers {http['workers']}, "
        f"1-min load before the run {load}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
