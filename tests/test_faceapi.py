"""face-api AgeGenderNet rebuilt in ONNX: reference values, weights decoding, the runtime contract.

Reference numbers were measured with face-api 1.7.15 itself (its bundled TensorFlow.js, CPU
backend, under Node) on the same inputs: 35.6166 years for the PIL-resized astronaut crop and
36.0844 for the crop resized by face-api's own ``resizeBilinear`` (no half-pixel centres).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from ageguard.models import registry, store
from ageguard.models.convert import faceapi as conv
from ageguard.vision.age import AgeModel, AgeOutput, FaceApiAgeModel
from ageguard.vision.age.faceapi import resize_like_faceapi

skdata = pytest.importorskip("skimage.data")

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="module")
def model() -> FaceApiAgeModel:
    return FaceApiAgeModel()


@pytest.fixture(scope="module")
def crop88() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[83:171, 179:267])


def test_interface(model: FaceApiAgeModel) -> None:
    assert isinstance(model, AgeModel)
    assert model.input_size == 112
    assert (
        store.sha256_file(store.model_path("faceapi_agegender"))
        == registry.ASSETS["faceapi_agegender"].sha256
    )


def test_astronaut_reference_faceapi_resize(model: FaceApiAgeModel, crop88: np.ndarray) -> None:
    out = model.predict(resize_like_faceapi(crop88)[None])
    assert isinstance(out, AgeOutput) and out.std is None
    assert out.mean.shape == (1,) and out.mean.dtype == np.float32
    assert abs(float(out.mean[0]) - 36.06) < 0.3


def test_astronaut_pil_resize_matches_tfjs(model: FaceApiAgeModel, crop88: np.ndarray) -> None:
    crop = np.asarray(Image.fromarray(crop88).resize((112, 112), Image.Resampling.BILINEAR))
    age, p_male = model.predict_with_gender(crop[None])
    assert abs(float(age[0]) - 35.6166) < 0.01
    assert p_male[0] < 0.1  # Eileen Collins; face-api says female, 0.925


def test_float_input_matches_tfjs(crop88: np.ndarray) -> None:
    """The graph itself, fed face-api's exact float tensor (legacy bilinear, no rounding)."""
    h, w = crop88.shape[:2]
    ys = np.arange(112, dtype=np.float32) * (h / 112)
    xs = np.arange(112, dtype=np.float32) * (w / 112)
    y0, x0 = ys.astype(np.intp), xs.astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    dy, dx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    src = crop88.astype(np.float32)
    top = src[y0][:, x0] * (1 - dx) + src[y0][:, x1] * dx
    bottom = src[y1][:, x0] * (1 - dx) + src[y1][:, x1] * dx
    tensor = (top * (1 - dy) + bottom * dy)[None].astype(np.float32)
    (age,) = store.session("faceapi_agegender").run(["age"], {"input": tensor})
    assert abs(float(age[0]) - 36.0844) < 0.01


def test_batch_equals_single(model: FaceApiAgeModel, crop88: np.ndarray) -> None:
    a = resize_like_faceapi(crop88)
    b = np.ascontiguousarray(a[:, ::-1])
    c = np.full_like(a, 128)
    batch = model.predict(np.stack([a, b, c])).mean
    singles = np.concatenate([model.predict(x[None]).mean for x in (a, b, c)])
    np.testing.assert_allclose(batch, singles, atol=1e-3)
    assert model.predict(np.zeros((0, 112, 112, 3), np.uint8)).mean.shape == (0,)


@pytest.mark.parametrize(
    "bad", [np.zeros((112, 112, 3), np.uint8), np.zeros((1, 96, 96, 3), np.uint8), np.zeros((1, 112, 112, 3))]
)
def test_rejects_bad_shapes(model: FaceApiAgeModel, bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        model.predict(bad)


def test_utkface_sample_mae(model: FaceApiAgeModel) -> None:
    """face-api was trained on UTKFace, so this is optimistic; measured MAE 4.3 on 59 images."""
    folder = DATASETS / "utkface-dev"
    if not folder.is_dir():
        pytest.skip("shared UTKFace dev set not available")
    with (folder / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))[::100]
    crops, ages = [], []
    for row in rows:
        with Image.open(folder / "images" / row["file"]) as im:
            crops.append(np.asarray(im.convert("RGB").resize((112, 112), Image.Resampling.BILINEAR)))
        ages.append(float(row["age"]))
    pred = model.predict(np.stack(crops)).mean
    assert np.abs(pred - np.array(ages)).mean() < 6.0


def test_dequantisation_matches_tfjs() -> None:
    manifest = [
        {
            "paths": ["w.bin"],
            "weights": [
                {
                    "name": "q",
                    "shape": [2, 2],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": 0.1, "min": -1.0},
                },
                {"name": "f", "shape": [2], "dtype": "float32"},
            ],
        }
    ]
    data = bytes([0, 10, 20, 255]) + np.array([1.5, -2.0], "<f4").tobytes()
    weights = conv.read_tfjs_weights(
        "m/manifest.json", {"m/manifest.json": json.dumps(manifest).encode(), "m/w.bin": data}
    )
    expected = (np.array([0, 10, 20, 255], np.float64) * 0.1 - 1.0).astype(np.float32).reshape(2, 2)
    np.testing.assert_array_equal(weights["q"], expected)
    np.testing.assert_array_equal(weights["f"], np.array([1.5, -2.0], np.float32))
    with pytest.raises(ValueError, match="unread"):
        conv.read_tfjs_weights(
            "m/manifest.json", {"m/manifest.json": json.dumps(manifest).encode(), "m/w.bin": data + b"x"}
        )


def _random_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes: dict[str, tuple[int, ...]] = {
        "entry_flow/conv_in/filters": (3, 3, 3, 32),
        "entry_flow/conv_in/bias": (32,),
    }

    def sep(prefix: str, cin: int, cout: int) -> None:
        shapes[f"{prefix}/depthwise_filter"] = (3, 3, cin, 1)
        shapes[f"{prefix}/pointwise_filter"] = (1, 1, cin, cout)
        shapes[f"{prefix}/bias"] = (cout,)

    def reduction(prefix: str, cin: int, cout: int) -> None:
        sep(f"{prefix}/separable_conv0", cin, cout)
        sep(f"{prefix}/separable_conv1", cout, cout)
        shapes[f"{prefix}/expansion_conv/filters"] = (1, 1, cin, cout)
        shapes[f"{prefix}/expansion_conv/bias"] = (cout,)

    reduction("entry_flow/reduction_block_0", 32, 64)
    reduction("entry_flow/reduction_block_1", 64, 128)
    for i in range(2):
        for j in range(3):
            sep(f"middle_flow/main_block_{i}/separable_conv{j}", 128, 128)
    reduction("exit_flow/reduction_block", 128, 256)
    sep("exit_flow/separable_conv", 256, 512)
    shapes.update(
        {
            "fc/age/weights": (512, 1),
            "fc/age/bias": (1,),
            "fc/gender/weights": (512, 2),
            "fc/gender/bias": (2,),
        }
    )
    return {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in shapes.items()}


def test_build_model_is_deterministic_and_complete() -> None:
    weights = _random_weights()
    first = conv.build_model(weights).SerializeToString()
    assert first == conv.build_model(weights).SerializeToString()
    sess = ort.InferenceSession(first, providers=["CPUExecutionProvider"])
    age, gender = sess.run(None, {"input": np.zeros((3, 112, 112, 3), np.float32)})
    assert age.shape == (3,) and gender.shape == (3, 2)
    np.testing.assert_allclose(gender.sum(axis=1), 1.0, atol=1e-5)
    weights["extra/unused"] = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match="not used"):
        conv.build_model(weights)
