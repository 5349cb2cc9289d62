"""The liveness model: crops, the decision per level, the quality gate, the shipped model and the metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from imagegen import centred_box, face_canvas

from ageguard.errors import AgeGuardError
from ageguard.eval import antispoof as ev
from ageguard.vision.liveness import DecisionPolicy, OnnxLivenessModel, QualityGate
from ageguard.vision.liveness.base import LEVELS, FaceQuality, LevelThresholds, face_quality
from ageguard.vision.liveness.crops import liveness_crops, scaled_box
from ageguard.vision.liveness.model import MODEL_DIR
from ageguard.vision.types import Face

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_face(box: tuple[float, float, float, float]) -> Face:
    left, t, r, b = box
    w, h = r - left, b - t
    points = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.5), (0.35, 0.75), (0.65, 0.75)]
    marks = np.array([[left + fx * w, t + fy * h] for fx, fy in points], dtype=np.float32)
    return Face(box=box, landmarks=marks, score=0.99)


# ---------------------------------------------------------------- crops


def test_scaled_box_is_shifted_inside_not_clipped() -> None:
    # A face near the left edge: the 2.7x box keeps its size and moves right.
    x0, y0, x1, y1 = scaled_box(640, 480, (10, 100, 110, 220), 2.7)
    assert x0 == 0.0
    assert x1 - x0 == pytest.approx(270.0)
    assert y1 - y0 == pytest.approx(324.0)
    assert y0 >= 0 and y1 <= 479


def test_scaled_box_scale_is_capped_by_the_image() -> None:
    # A tight crop (face fills the image): the context is the whole image, never outside it.
    x0, y0, x1, y1 = scaled_box(224, 224, (30, 20, 194, 210), 2.7)
    assert x0 >= 0 and y0 >= 0 and x1 <= 223.0 + 1e-6 and y1 <= 223.0 + 1e-6
    assert y1 - y0 == pytest.approx(223.0)


def test_liveness_crops_shapes() -> None:
    image = face_canvas(640, 480, centred_box(640, 480, 200))
    context, face = liveness_crops(image, centred_box(640, 480, 200), 80, 64)
    assert context.shape == (80, 80, 3) and face.shape == (64, 64, 3)
    assert context.dtype == np.uint8 and face.dtype == np.uint8


# ---------------------------------------------------------------- decision


def test_level_thresholds_band() -> None:
    t = LevelThresholds(threshold=0.5, lower=0.4, upper=0.6)
    assert t.decide(0.9) == "real"
    assert t.decide(0.6) == "real"
    assert t.decide(0.5) == "undetermined"
    assert t.decide(0.4) == "undetermined"
    assert t.decide(0.39) == "fake"


def _policy() -> DecisionPolicy:
    return DecisionPolicy(
        levels={
            "low": LevelThresholds(0.2, 0.15, 0.25),
            "medium": LevelThresholds(0.5, 0.45, 0.55),
            "high": LevelThresholds(0.8, 0.75, 0.85),
        },
        quality=QualityGate(),
    )


def test_levels_are_ordered_by_strictness() -> None:
    policy = _policy()
    assert [policy.decide(0.6, lv) for lv in LEVELS] == ["real", "real", "fake"]


def test_policy_json_round_trip() -> None:
    policy = _policy()
    assert DecisionPolicy.from_json(json.loads(json.dumps(policy.to_json()))) == policy


@pytest.mark.parametrize(
    ("quality", "problem"),
    [
        (FaceQuality(20, 120, 20), "face too small"),
        (FaceQuality(200, 10, 20), "face too dark"),
        (FaceQuality(200, 250, 20), "face too bright"),
        (FaceQuality(200, 120, 0.5), "face too blurred"),
        (FaceQuality(200, 120, 20), None),
    ],
)
def test_quality_gate(quality: FaceQuality, problem: str | None) -> None:
    assert quality.problem(QualityGate()) == problem
    if problem:
        assert _policy().decide(0.99, "low", quality) == "undetermined"


def test_face_quality_sees_blur_and_darkness() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    flat = np.full((64, 64, 3), 8, dtype=np.uint8)
    face = make_face((0, 0, 100, 120))
    assert face_quality(sharp, face).sharpness > face_quality(flat, face).sharpness
    assert face_quality(flat, face).brightness == pytest.approx(8, abs=0.5)
    assert face_quality(flat, face).face_px == 100


# ---------------------------------------------------------------- the shipped model


@pytest.fixture(scope="module")
def model() -> OnnxLivenessModel:
    return OnnxLivenessModel()


def test_shipped_model_files_agree() -> None:
    meta = json.loads((MODEL_DIR / "antispoof.json").read_text())
    assert (MODEL_DIR / meta["model"]).stat().st_size < 5_000_000  # committed to git: stays small
    policy = DecisionPolicy.from_json(meta)
    for level in LEVELS:
        t = policy.levels[level]
        assert 0.0 < t.lower <= t.threshold <= t.upper < 1.0
    # Stricter levels demand a higher score.
    assert (
        policy.levels["low"].threshold <= policy.levels["medium"].threshold <= policy.levels["high"].threshold
    )


def test_shipped_model_gives_a_verdict(model: OnnxLivenessModel) -> None:
    box = centred_box(640, 480, 220)
    image = face_canvas(640, 480, box)
    face = make_face(box)
    for level in LEVELS:
        verdict = model.verdict(image, face, level)
        assert verdict.prediction in ("real", "fake", "undetermined")
        assert 0.0 <= verdict.score <= 1.0
    # Deterministic.
    assert model.score(image, face).score == model.score(image, face).score


def test_too_small_a_face_is_undetermined(model: OnnxLivenessModel) -> None:
    box = centred_box(640, 480, 30)
    image = face_canvas(640, 480, box)
    assert model.verdict(image, make_face(box), "medium").prediction == "undetermined"


def test_dark_face_is_undetermined(model: OnnxLivenessModel) -> None:
    box = centred_box(640, 480, 220)
    image = (face_canvas(640, 480, box) // 12).astype(np.uint8)
    assert model.verdict(image, make_face(box), "low").prediction == "undetermined"


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    for name in ("antispoof.json", "antispoof.onnx"):
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    with (tmp_path / "antispoof.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(AgeGuardError) as err:
        OnnxLivenessModel(tmp_path)
    assert err.value.code == "SERVICE_UNAVAILABLE"


def test_missing_model_is_service_unavailable(tmp_path: Path) -> None:
    with pytest.raises(AgeGuardError) as err:
        OnnxLivenessModel(tmp_path)
    assert err.value.code == "SERVICE_UNAVAILABLE"


def test_settings_point_the_service_at_a_retrained_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AGEGUARD_LIVENESS_MODEL_DIR: a deployment serves its own `train antispoof --out` folder."""
    from ageguard.settings import Settings
    from ageguard.vision.liveness import load_liveness_model

    for name in ("antispoof.json", "antispoof.onnx"):
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    meta = json.loads((tmp_path / "antispoof.json").read_text())
    # A stricter medium level than the shipped one, so the verdict shows which policy is in use.
    meta["levels"]["medium"] = {"threshold": 0.9999, "lower": 0.9998, "upper": 0.99995}
    (tmp_path / "antispoof.json").write_text(json.dumps(meta))
    monkeypatch.setenv("AGEGUARD_LIVENESS_MODEL_DIR", str(tmp_path))
    model = load_liveness_model(Settings())
    assert model.policy.levels["medium"].threshold == 0.9999
    box = centred_box(640, 480, 220)
    image = face_canvas(640, 480, box)
    shipped = load_liveness_model(Settings(liveness_model_dir=None))
    scored = model.verdict(image, make_face(box), "medium")
    assert scored.score == pytest.approx(shipped.verdict(image, make_face(box), "medium").score)
    assert scored.score < 0.9998 and scored.prediction == "fake"

    monkeypatch.setenv("AGEGUARD_LIVENESS_MODEL_DIR", str(tmp_path / "missing"))
    with pytest.raises(AgeGuardError) as err:
        load_liveness_model(Settings())
    assert err.value.code == "SERVICE_UNAVAILABLE"


# ---------------------------------------------------------------- metrics


def test_rates_follow_iso_definitions() -> None:
    real = np.array([True, True, True, True, False, False, False, False])
    pred = ["real", "real", "fake", "undetermined", "real", "fake", "fake", "undetermined"]
    r = ev.rates(real, pred)
    assert r["apcer"] == pytest.approx(0.25)
    assert r["bpcer"] == pytest.approx(0.25)
    assert r["acer"] == pytest.approx(0.25)
    assert r["undetermined"] == pytest.approx(0.25)


def test_roc_auc() -> None:
    real = np.array([True, True, False, False])
    assert ev.roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), real) == 1.0
    assert ev.roc_auc(np.array([0.1, 0.2, 0.9, 0.8]), real) == 0.0
    assert ev.roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), real) == 0.5
    assert ev.roc_auc(np.array([0.5, 0.5]), np.array([True, True])) is None


def test_metrics_tables_and_markdown() -> None:
    rows = [
        ev.Row("a", True, "none", "S1", "1", score=0.9, peer_score=0.8, peer_real=True),
        ev.Row("b", True, "none", "S2", "2", score=0.3, peer_score=0.2, peer_real=False),
        ev.Row("c", False, "print", "S1", "1", score=0.1, peer_score=0.7, peer_real=True),
        ev.Row("d", False, "replay", "S2", "2", score=0.52, peer_score=0.1, peer_real=False),
        ev.Row("e", False, "replay", "S2", "2"),  # no face
    ]
    result = ev.metrics(rows, _policy())
    assert result["no_face"] == 1
    medium = result["ours"]["medium"]
    assert medium["all"]["bpcer"] == pytest.approx(0.5)
    assert medium["all"]["apcer"] == 0.0
    assert medium["all"]["undetermined"] == pytest.approx(0.25)
    assert medium["attack:print"]["apcer"] == 0.0
    assert result["peer"]["all"]["apcer"] == pytest.approx(0.5)
    assert set(medium) >= {"all", "source:S1", "source:S2", "attack:print", "attack:replay"}
    text = ev.markdown(result)
    assert "MiniFASNetV2" in text and "source:S1" in text


def test_read_labels_without_optional_columns(tmp_path: Path) -> None:
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("file,label\na.jpg,real\nb.jpg,fake\n")
    labels = ev.read_labels(csv_path)
    assert [(lb.real, lb.attack) for lb in labels] == [(True, "none"), (False, "attack")]


def test_eval_run_on_generated_images(tmp_path: Path, face_detector: object) -> None:
    from PIL import Image

    box = centred_box(640, 480, 220)
    Image.fromarray(face_canvas(640, 480, box)).save(tmp_path / "live.jpg", quality=95)
    Image.fromarray(face_canvas(640, 480, None)).save(tmp_path / "empty.jpg", quality=95)
    (tmp_path / "labels.csv").write_text("file,label\nlive.jpg,real\nempty.jpg,fake\n")
    out = tmp_path / "report.json"
    result = ev.run(tmp_path, tmp_path / "labels.csv", False, out, echo=lambda _: None)
    assert result["images"] == 2 and result["no_face"] == 1
    assert json.loads(out.read_text())["rows"][0]["score"] is not None


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "peers" / ev.PEER_FILE).exists(), reason="no ../shared/peers")
def test_peer_on_nuaa_sample(tmp_path: Path, face_detector: object) -> None:
    nuaa = SHARED / "datasets" / "nuaa-dev"
    lines = (nuaa / "labels.csv").read_text().splitlines()
    (tmp_path / "labels.csv").write_text("\n".join([lines[0], *lines[1:4], *lines[-3:]]) + "\n")
    result = ev.run(nuaa / "images", tmp_path / "labels.csv", True, None, echo=lambda _: None)
    assert result["peer"]["all"]["n_bona_fide"] + result["peer"]["all"]["n_attack"] == 6
    assert set(result["ms_per_face"]) == {ev.OURS_NAME, ev.PEER_NAME}


def test_load_liveness_model_uses_settings_threads() -> None:
    from ageguard.settings import Settings
    from ageguard.vision.liveness import load_liveness_model

    model = load_liveness_model(Settings(onnx_threads=1))
    assert isinstance(model, OnnxLivenessModel)
    assert model.policy.levels["medium"].threshold > 0
