"""The official Yoti SDKs (Python in tests/sdk/.venv, Node in tests/sdk/node_modules) and the live server.

The Python SDK's pins come from pyproject's ``sdk-tests`` extra; it lives in its own virtual environment
because it pins protobuf<6, which AgeGuard's onnx cannot use. Both are installed on first use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import live_server
import pytest

SDK_DIR = Path(__file__).resolve().parent
ROOT = SDK_DIR.parents[1]
VENV = SDK_DIR / ".venv"


def python_sdk_pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["sdk-tests"])


def _installed(python: Path, pins: list[str]) -> bool:
    if not python.exists():
        return False
    check = (
        "import importlib.metadata as m, sys; print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
    )
    names = [pin.split("==")[0] for pin in pins]
    result = subprocess.run([str(python), "-c", check, *names], capture_output=True, text=True)
    return result.returncode == 0 and sorted(result.stdout.split()) == sorted(pins)


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The interpreter of tests/sdk/.venv, with the pinned yoti and future installed."""
    python = VENV / "bin" / "python"
    pins = python_sdk_pins()
    if not _installed(python, pins):
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], check=True)
    assert _installed(python, pins), f"could not install {pins} into {VENV}"
    return python


@pytest.fixture(scope="session")
def sdk_node() -> str:
    """node, with the pinned npm ``yoti`` installed from package-lock.json."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    wanted = json.loads((SDK_DIR / "package.json").read_text())["dependencies"]["yoti"]
    installed = SDK_DIR / "node_modules" / "yoti" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install the Node SDK"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=SDK_DIR, check=True)
    assert json.loads(installed.read_text())["version"] == wanted
    return node


@pytest.fixture(scope="session")
def live() -> Iterator[live_server.LiveServer]:
    server = live_server.acquire()
    try:
        yield server
    finally:
        live_server.release()


def run_driver(command: list[str], requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="ageguard-sdk-") as tmp:
        src, dst = Path(tmp) / "requests.json", Path(tmp) / "results.json"
        src.write_text(json.dumps(requests))
        proc = subprocess.run(
            [*command, str(src), str(dst)], cwd=SDK_DIR, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        results: list[dict[str, Any]] = json.loads(dst.read_text())
    assert len(results) == len(requests)
    return results


@pytest.fixture(scope="session")
def drive(sdk_python: Path, sdk_node: str):  # type: ignore[no-untyped-def]
    """``drive(sdk, requests)`` runs a batch through the official ``python`` or ``node`` SDK."""

    def run(sdk: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if sdk == "python":
            return run_driver([str(sdk_python), str(SDK_DIR / "py_driver.py")], requests)
        return run_driver([sdk_node, str(SDK_DIR / "node_driver.js")], requests)

    return run
