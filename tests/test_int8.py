"""The int8 variant of faceres-deep: pinned like every asset, selected by a setting, close to float32."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from imagegen import centred_box, face_canvas, jpeg_bytes
from pydantic import ValidationError
from typer.testing import CliRunner

from ageguard.cli import app
from ageguard.models import registry, store
from ageguard.models.convert import int8
from ageguard.settings import Settings, get_settings
from ageguard.vision.age.faceres import ASSET, FaceResAge
from ageguard.vision.pipeline import Pipeline

ASSET_INT8 = registry.FACERES_DEEP_INT8.name
UTKFACE = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "utkface-dev"


@pytest.fixture(scope="module")
def fp32_bytes() -> bytes:
    return store.ensure(ASSET).read_bytes()


@pytest.fixture
def precision(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AGEGUARD_NETWORK_PRECISION", "int8")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_shipped_ranges_give_the_pinned_bytes(fp32_bytes: bytes) -> None:
    # What the store does at install time, without the download: a changed quantiser or ranges file
    # must fail here, not on a user's machine.
    pin = registry.get_asset(ASSET_INT8).sha256
    assert pin is not None
    assert hashlib.sha256(int8.quantize(fp32_bytes, int8.FACERES_RANGES)).hexdigest() == pin


def test_store_installs_and_verifies_the_variant() -> None:
    path = store.ensure(ASSET_INT8)
    assert store.sha256_file(path) == registry.get_asset(ASSET_INT8).sha256
    assert "quantised to int8" in store.notice_path(ASSET_INT8).read_text()
    assert path.stat().st_size < store.model_path(ASSET).stat().st_size / 3


def test_the_setting_selects_the_variant(precision: None) -> None:
    assert store.selected_assets() == [*registry.SERVING_ASSETS, ASSET_INT8]
    assert FaceResAge.from_store(get_settings().network_precision).asset == ASSET_INT8
    result = CliRunner().invoke(app, ["models", "install"])
    assert result.exit_code == 0, result.output
    assert ASSET_INT8 in result.stdout


def test_float32_is_the_default_and_other_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGEGUARD_NETWORK_PRECISION", raising=False)
    assert Settings().network_precision == "float32"
    assert ASSET_INT8 not in registry.SERVING_ASSETS
    monkeypatch.setenv("AGEGUARD_NETWORK_PRECISION", "fp16")
    with pytest.raises(ValidationError, match="network_precision"):
        Settings()


def _age(pipeline: Pipeline, data: bytes) -> float:
    estimate = pipeline.analyse(data, level="low").age
    assert estimate is not None
    return estimate.age


@pytest.mark.skipif(not UTKFACE.exists(), reason="no ../shared/datasets")
def test_int8_ages_stay_close_to_float32() -> None:
    fp32 = Pipeline(get_settings().model_copy(update={"network_precision": "float32"}))
    quant = Pipeline(get_settings().model_copy(update={"network_precision": "int8"}))
    files = sorted((UTKFACE / "images").iterdir())[::250][:20]
    gaps = [abs(_age(fp32, f.read_bytes()) - _age(quant, f.read_bytes())) for f in files]
    # Measured on 199 utkface-dev faces: median gap 0.22 y, 95th percentile 1.12 y, largest 3.2 y, the same
    # on every CPU (7-bit weights: no CPU's integer products saturate).
    assert float(np.median(gaps)) < 0.5
    assert max(gaps) < 4.0
    timings = quant.analyse(jpeg_bytes(face_canvas(1280, 720, centred_box(1280, 720, 380)))).timings_ms
    assert f"net:{ASSET_INT8}" in timings and f"net:{ASSET}" not in timings


def test_calibrate_command_writes_ranges_that_quantise(tmp_path: Path, fp32_bytes: bytes) -> None:
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    rows = []
    for i, (height, label) in enumerate([(380, "real"), (330, "real"), (420, "fake"), (300, "real")]):
        image = face_canvas(1280, 720, centred_box(1280, 720, height, dx=0.05 * i), seed=i)
        (folder / "images" / f"{i}.jpg").write_bytes(jpeg_bytes(image, quality=95))
        rows.append({"file": f"{i}.jpg", "label": label})
    rows.append({"file": "missing.jpg", "label": "real"})
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["file", "label"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "ranges.json"
    args = ["models", "calibrate-int8", "--dataset", str(folder), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # The spoof is left out and the unreadable file reported, not fatal.
    assert "3 faces of 4 images" in result.stdout
    assert "missing.jpg: skipped" in result.output

    quantised = int8.quantize(fp32_bytes, out)
    model = ort.InferenceSession(quantised, providers=["CPUExecutionProvider"])
    assert any(node.op_type == "QuantizeLinear" for node in _nodes(quantised))
    face = np.full((1, 224, 224, 3), 20.0, np.float32)
    probs = model.run(["age_probs"], {"input": face})[0]
    assert probs.shape == (1, 100) and abs(float(probs.sum()) - 1.0) < 1e-3


def _nodes(model_bytes: bytes) -> list[object]:
    import onnx

    return list(onnx.load_from_string(model_bytes).graph.node)


def test_quantize_without_ranges_says_how_to_make_them(tmp_path: Path, fp32_bytes: bytes) -> None:
    with pytest.raises(FileNotFoundError, match="calibrate-int8"):
        int8.quantize(fp32_bytes, tmp_path / "none.json")
