"""``ageguard bench --http``: the load process, the summary arithmetic and one tiny real run (no timings
are asserted: only that the figures exist, add up and that every answer is counted)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from ageguard.cli import app
from ageguard.eval.httpbench import PipelineSamples, acceptance, paired_c1, ratios, summarise_level
from ageguard.eval.httpload import NO_ANSWER, run_load


class _Stub(BaseHTTPRequestHandler):
    """200 for odd nonces, a catalogue error for even ones; the body must arrive whole."""

    protocol_version = "HTTP/1.1"
    seen: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        number = int(self.path.rsplit("=", 1)[1])
        type(self).seen.append(len(body))
        if number % 2:
            status, payload = 200, {"age": {"age": 30.0, "st_dev": 2.0}}
        else:
            status, payload = 401, {"error_code": "INVALID_NONCE", "error_message": "used"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@pytest.fixture
def stub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Stub.seen = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _job(port: int, body_file: Path, count: int, concurrency: int) -> dict[str, object]:
    requests = [{"sdk_id": "x", "url_path": f"/ai/v1/age?n={i}", "digest": "d"} for i in range(count)]
    return {
        "host": "127.0.0.1",
        "port": port,
        "body_file": str(body_file),
        "requests": requests,
        "concurrency": concurrency,
        "max_seconds": 30,
    }


def test_every_answer_is_counted_by_status_and_code(stub_server: int, tmp_path: Path) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(b'{"img": "' + b"A" * 300_000 + b'"}')
    load = run_load(_job(stub_server, body_file, 9, 3))
    assert len(load["results"]) == 9
    assert set(_Stub.seen) == {body_file.stat().st_size}
    assert load["sample"] == {"age": {"age": 30.0, "st_dev": 2.0}}
    level = summarise_level(load)
    assert level["requests"] == 9 and level["ok"] == 4
    assert level["statuses"] == {"200": 4, "401": 5}
    assert level["errors"] == {"401 INVALID_NONCE": 5}
    assert level["p50_ms"] > 0 and level["p95_ms"] >= level["p50_ms"] and level["rps"] > 0


def test_a_server_that_is_not_there_is_reported_not_dropped(tmp_path: Path) -> None:
    from ageguard.eval.httpbench import free_port

    body_file = tmp_path / "body.json"
    body_file.write_bytes(b"{}")
    level = summarise_level(run_load(_job(free_port(), body_file, 3, 2)))
    assert level["requests"] == 3 and level["ok"] == 0
    assert level["statuses"] == {str(NO_ANSWER): 3}


def test_concurrency_1_alternates_with_the_pipeline(stub_server: int, tmp_path: Path) -> None:
    """Blocks of HTTP requests and of in-process pipeline runs take turns: both see the same machine."""
    events: list[str] = []

    class Recording:  # stands in for the pipeline: what is tested is the order of the two kinds of work
        def analyse(self, data: bytes, **options: Any) -> SimpleNamespace:
            events.append("pipeline")
            return SimpleNamespace(timings_ms={"net:x": 1.0, "decode": 0.5}, age=None, liveness=None)

    body_file = tmp_path / "body.json"
    body_file.write_bytes(b"{}")

    def send(count: int, seconds: float) -> dict[str, Any]:
        events.append(f"http:{count}")
        return run_load(_job(stub_server, body_file, count, 1))

    samples = PipelineSamples(Recording(), b"", liveness=False)
    level = paired_c1(samples, send, requests=20, pipeline_runs=6, max_seconds=30.0, block=8)
    assert events == ["pipeline", "pipeline", "http:8"] * 2 + ["pipeline", "pipeline", "http:4"]
    assert level["requests"] == 20 and level["ok"] == 4 + 4 + 2 and level["paired_blocks"] == 3
    assert level["rps"] > 0 and level["seconds"] > 0
    figures = samples.summary()
    assert figures["pipeline_runs"] == 6 and figures["networks"] == {"x": 1.0}

    # Out of time after the first block: the level says how many blocks it holds.
    events.clear()
    level = paired_c1(samples, send, requests=20, pipeline_runs=6, max_seconds=0.0, block=8)
    assert events == ["pipeline", "pipeline", "http:8"]
    assert level["requests"] == 8 and level["paired_blocks"] == 1


def test_ratios_against_the_networks_floor() -> None:
    levels = [
        {"concurrency": 1, "p50_ms": 60.0, "rps": 16.0},
        {"concurrency": 8, "p50_ms": 400.0, "rps": 34.0},
    ]
    r = ratios(50.0, 55.0, levels, cores=2)
    assert r["floor_rps"] == 40.0
    assert r["pipeline_over_networks"] == 1.1
    assert r["http_c1_minus_pipeline_ms"] == 5.0
    assert r["rps_concurrency"] == 8 and r["rps_over_floor"] == 0.85
    assert all(acceptance(r, 0).values())
    assert not acceptance(r, 1)["no_non_200"]
    assert not acceptance(ratios(50.0, 70.0, levels, cores=2), 0)["pipeline_le_1.25x_networks"]


def test_bad_options_are_refused() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "--http", "--concurrency", "1,x"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["bench", "--http", "--endpoints", "age,nope"])
    assert result.exit_code == 2


def test_a_tiny_real_run_end_to_end(tmp_path: Path) -> None:
    """A real server, one application, signed requests from the load process: every answer a 200 and the
    same age as the pipeline gave in this process."""
    pytest.importorskip("skimage")
    pytest.importorskip("matplotlib")
    plot = tmp_path / "http.png"
    args = ["bench", "--http", "--json", "--endpoints", "age", "--concurrency", "1,2"]
    args += ["--requests", "2", "--runs", "1", "--warmup", "0", "--workers", "1", "--plot", str(plot)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])["http"]
    assert summary["non_200"] == 0 and summary["workers"] == 1
    age = summary["endpoints"]["age"]
    assert [lv["concurrency"] for lv in age["levels"]] == [1, 2]
    assert all(lv["statuses"] == {"200": lv["requests"]} for lv in age["levels"])
    assert age["networks_ms"] > 0 and age["pipeline_p50_ms"] > 0
    assert set(age["ratios"]) >= {"pipeline_over_networks", "http_c1_over_pipeline", "rps_over_floor"}
    assert age["http_answer"] == age["answer"]
    assert plot.stat().st_size > 1000
