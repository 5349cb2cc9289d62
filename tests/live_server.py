"""A live ``ageguard serve`` for end-to-end tests: a real uvicorn subprocess on a free port, with a temporary
AGEGUARD_HOME (SQLite store, embedded default application), its own TMPDIR and a log file.

One server is shared by every test module that asks for it (``acquire``/``release`` count users). It runs
with a small inference queue so the overload test can fill it; the other tests send one request at a time.
Models come from the usual AGEGUARD_MODEL_DIR cache (``ageguard models install``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = float(os.environ.get("AGEGUARD_TEST_STARTUP_S", "300"))

#: Settings the shared server runs with (the concurrency test relies on the small queue).
SERVER_ENV = {
    "AGEGUARD_QUEUE_SIZE": "2",
    "AGEGUARD_INFERENCE_THREADS": "1",
}
WORKERS = 2


@dataclass
class LiveServer:
    url: str
    root: Path
    home: Path
    tmpdir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    sdk_id: str
    key_path: Path

    @property
    def api(self) -> str:
        return self.url + "/ai/v1"

    @property
    def db_path(self) -> Path:
        return self.home / "ageguard.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ageguard_command() -> list[str]:
    script = Path(sys.executable).with_name("ageguard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ageguard.cli import main; main()"]


def start(root: Path, *, workers: int = WORKERS, extra_env: dict[str, str] | None = None) -> LiveServer:
    home = root / "home"
    tmpdir = root / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    log_path = root / "server.log"
    port = free_port()
    env = dict(os.environ)
    env.pop("AGEGUARD_DATABASE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(SERVER_ENV)
    env.update(extra_env or {})
    env.update({"AGEGUARD_HOME": str(home), "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"})
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [*ageguard_command(), "serve", "--port", str(port), "--workers", str(workers)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"ageguard serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            status = httpx.get(url + "/health", timeout=5).status_code
            if status == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        stop_process(proc)
        raise RuntimeError(
            f"/health not 200 (last {status}) in {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}"
        )
    info = json.loads((home / "local-app.json").read_text())
    return LiveServer(url, root, home, tmpdir, log_path, proc, info["sdk_id"], Path(info["key_path"]))


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


_lock = threading.Lock()
_server: LiveServer | None = None
_users = 0


def acquire() -> LiveServer:
    """The shared live server, started on first use."""
    global _server, _users
    with _lock:
        if _server is None:
            root = Path(tempfile.mkdtemp(prefix="ageguard-live-"))
            _server = start(root)
        _users += 1
        return _server


def release() -> None:
    global _server, _users
    with _lock:
        _users -= 1
        if _users <= 0 and _server is not None:
            stop_process(_server.proc)
            shutil.rmtree(_server.root, ignore_errors=True)
            _server = None
