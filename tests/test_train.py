"""Training on a tiny subset: it runs, is reproducible from its seed and exports a loadable model.

Needs the ``[train]`` extra (torch) and ../shared/datasets; skipped without them. Faces are boxed by a
fixed centre rule here (the real run uses the product's detector), so the test needs no detector.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ageguard.train.antispoof import augment  # noqa: E402
from ageguard.train.antispoof.data import LabelsError, Sample, load_fas, load_labelled  # noqa: E402
from ageguard.train.antispoof.trainer import TrainConfig, run, split_by_subject  # noqa: E402
from ageguard.vision.liveness import OnnxLivenessModel  # noqa: E402
from ageguard.vision.types import Face  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
needs_data = pytest.mark.skipif(not (DATA / "fas-dev").exists(), reason="no ../shared/datasets")


def centre_face(image: np.ndarray) -> list[Face]:
    h, w = image.shape[:2]
    side = 0.5 * min(h, w)
    box = (w / 2 - side / 2, h / 2 - side / 2, w / 2 + side / 2, h / 2 + side / 2)
    marks = np.zeros((5, 2), np.float32)
    return [Face(box=box, landmarks=marks, score=1.0)]


def tiny(seed: int = 0) -> TrainConfig:
    return TrainConfig(seed=seed, passes=1, epochs=2, batch=16, utk_count=4, limit=3, val_share=0.34)


@needs_data
def test_tiny_training_exports_a_loadable_model(tmp_path: Path) -> None:
    result = run(DATA, tmp_path, tiny(), centre_face, log=lambda _: None)
    assert result.onnx.exists() and result.policy_json.exists()
    meta = json.loads(result.policy_json.read_text())
    assert meta["training"]["config"]["seed"] == 0
    model = OnnxLivenessModel(tmp_path)
    size = TrainConfig.crop_size
    assert meta["inputs"]["context"] == [3, size, size]
    image = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    face = centre_face(image)[0]
    verdict = model.verdict(image, face, "medium")
    assert verdict.prediction in ("real", "fake", "undetermined")
    assert 0.0 <= verdict.score <= 1.0


@needs_data
def test_same_seed_same_model(tmp_path: Path) -> None:
    a = run(DATA, tmp_path / "a", tiny(7), centre_face, log=lambda _: None)
    b = run(DATA, tmp_path / "b", tiny(7), centre_face, log=lambda _: None)
    image = np.random.default_rng(1).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    face = centre_face(image)[0]
    score_a = OnnxLivenessModel(a.onnx.parent).score(image, face).score
    score_b = OnnxLivenessModel(b.onnx.parent).score(image, face).score
    assert score_a == pytest.approx(score_b, abs=1e-6)


@needs_data
def test_folds_leave_a_source_out() -> None:
    samples = load_fas(DATA)
    cfg = TrainConfig(exclude_sources=("CASIA-FASD",), utk_count=0)
    from ageguard.train.antispoof.trainer import load_samples

    assert all(s.source != "CASIA-FASD" for s in load_samples(DATA, cfg))
    assert any(s.source == "CASIA-FASD" for s in samples)


def test_validation_split_is_subject_disjoint() -> None:
    samples = [
        Sample(Path(f"/x/{i}.jpg"), i % 2 == 0, "none", f"S{i % 3}", f"S{i % 3}:{i % 7}") for i in range(60)
    ]
    train, val = split_by_subject(samples, 0.3, 0)
    assert train and val and not set(train) & set(val)
    assert not {samples[i].subject for i in train} & {samples[i].subject for i in val}


def test_synthetic_attacks_keep_shapes_and_range() -> None:
    rng = np.random.default_rng(0)
    ctx = rng.uniform(0, 255, size=(96, 96, 3)).astype(np.float32)
    face = rng.uniform(0, 255, size=(96, 96, 3)).astype(np.float32)
    for attack in (augment.replay_attack, augment.print_attack):
        a, f = attack(ctx, face, (0.3, 0.3, 0.7, 0.7), rng)
        assert a.shape == ctx.shape and f.shape == face.shape
        assert a.min() >= 0 and a.max() <= 255
        assert not np.allclose(f, face)
    for _ in range(6):  # white balance, dim room, backlight: same shapes, in range, both crops changed
        a, f = augment.scene_light(ctx, face, (0.3, 0.3, 0.7, 0.7), rng)
        assert a.shape == ctx.shape and f.shape == face.shape
        assert a.min() >= 0 and a.max() <= 255 and f.min() >= 0 and f.max() <= 255
        assert not np.allclose(a, ctx) and not np.allclose(f, face)
    out = augment.capture(ctx, rng, strength=3.0)
    assert out.shape == ctx.shape and out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize("backbone", ["retinaface", "mobilenetv3", "faceres", "retinaface+mobilenetv3"])
def test_onnx_graph_matches_the_head(tmp_path: Path, backbone: str) -> None:
    """The exported graph computes exactly what training scored: features, then the head."""
    import onnxruntime as ort

    from ageguard.train.antispoof import graph
    from ageguard.train.antispoof.model import Head
    from ageguard.train.antispoof.trainer import Standardiser, export_onnx, score_features

    rng = np.random.default_rng(0)
    context = rng.uniform(0, 255, size=(3, 3, 96, 96)).astype(np.float32)
    face = rng.uniform(0, 255, size=(3, 3, 96, 96)).astype(np.float32)
    from ageguard.train.antispoof.trainer import backbones

    feats_model = ort.InferenceSession(graph.build(backbones(backbone)).SerializeToString())
    feats = feats_model.run(["features"], {"context": context, "face": face})[0]
    torch.manual_seed(0)
    head = Head(feats.shape[1], 8).eval()
    std = Standardiser(feats.mean(axis=0), feats.std(axis=0) + 1.0)
    export_onnx(head, std, backbone, tmp_path / "m.onnx")
    served = ort.InferenceSession(str(tmp_path / "m.onnx")).run(["live"], {"context": context, "face": face})[
        0
    ]
    assert served.shape == (3,)
    np.testing.assert_allclose(served, score_features(head, std, feats), rtol=1e-4, atol=1e-5)


def test_single_setup_sources_are_split_as_whole_setups() -> None:
    """Webcam-pool sources (one setup each, source = subject) go to validation whole, never split."""
    samples = [
        Sample(
            Path(f"/d/webcam/images/w{i % 10}_{i}.jpg"),
            i % 2 == 0,
            "none",
            f"w{i % 10}",
            f"w{i % 10}:w{i % 10}",
        )
        for i in range(100)
    ]
    samples += [
        Sample(Path(f"/d/fas-dev/images/{i}.jpg"), i % 2 == 0, "none", "F", f"F:{i % 6}") for i in range(30)
    ]
    assert {s.family for s in samples} == {"webcam", "fas-dev"}
    train, val = split_by_subject(samples, 0.2, 0)
    val_setups = {samples[i].source for i in val if samples[i].family == "webcam"}
    assert len(val_setups) == 2
    assert not val_setups & {samples[i].source for i in train}
    assert {samples[i].subject for i in val if samples[i].source == "F"}  # fas-dev: subjects, as before


def _tiny_table(tmp_path: Path, cfg: TrainConfig):  # type: ignore[no-untyped-def]
    from ageguard.eval.antispoof import find_peer
    from ageguard.train.antispoof import features
    from ageguard.train.antispoof.trainer import load_samples

    samples = load_samples(DATA, cfg)
    cache = tmp_path / "features"
    return features.build(
        samples,
        cfg,
        cache,
        centre_face,
        peer_path=find_peer(),
        box_cache=cache / "boxes.json",
        log=lambda _: None,
    )


@needs_data
def test_feature_cache_is_read_back_not_recomputed(tmp_path: Path) -> None:
    from ageguard.train.antispoof import features

    cfg = tiny()
    first = _tiny_table(tmp_path, cfg)
    calls: list[int] = []

    def counting(image: np.ndarray) -> list[Face]:
        calls.append(1)
        return centre_face(image)

    from ageguard.train.antispoof.trainer import load_samples

    again = features.build(load_samples(DATA, cfg), cfg, tmp_path / "features", counting, peer_path=None)
    assert not calls  # every source's file was there
    np.testing.assert_array_equal(first.clean, again.clean)
    np.testing.assert_array_equal(first.aug.x, again.aug.x)
    assert len(first.aug.real) == cfg.passes * len(first.samples)
    assert not np.isnan(first.peer_score).any()
    assert {s.source for s in first.samples} >= {"CASIA-FASD", "NUAA", "UTKFace"}


@needs_data
def test_folds_hold_out_every_source_and_score_as_served(tmp_path: Path) -> None:
    """A fold's held-out scores from the cached features are what the exported model serves."""
    from ageguard.eval.antispoof import Peer, find_peer
    from ageguard.train.antispoof import folds
    from ageguard.vision.liveness.base import face_quality
    from ageguard.vision.liveness.crops import quality_crop

    cfg = tiny()
    table = _tiny_table(tmp_path, cfg)
    report = folds.run_folds(table, cfg, log=lambda _: None)
    assert list(report["folds"]) == [*folds.FAS_SOURCES, "NUAA"]  # UTKFace (live only) is never held out
    assert set(report["pooled"]) == {"fas-dev", "nuaa-dev"}
    text = folds.markdown(report)
    assert "MiniFASNetV2" in text and "| NUAA (nuaa-dev) |" in text
    assert "NUAA held out: ACER" in folds.acceptance(report)
    rows = {r["file"]: r for r in report["rows"]}
    assert len(rows) == sum(s.source != "UTKFace" for s in table.samples + table.no_face)

    # The final model from the same table, served: same scores as the head on the cached rows.
    result = folds.train_final(table, tmp_path / "model", cfg, log=lambda _: None)
    model = OnnxLivenessModel(result.onnx.parent)
    fit = folds.fit(table, np.arange(len(table.samples)), cfg, log=lambda _: None)
    from ageguard.train.antispoof.data import load_rgb
    from ageguard.train.antispoof.trainer import score_features

    peer = Peer(find_peer())
    for i in (0, len(table.samples) // 2, len(table.samples) - 1):
        image = np.asarray(load_rgb(table.samples[i].path))
        face = centre_face(image)[0]
        served = model.score(image, face)
        cached = float(score_features(fit.head, fit.std, table.clean[i : i + 1])[0])
        assert served.score == pytest.approx(cached, abs=1e-4)
        q = face_quality(quality_crop(image, face.box), face)
        np.testing.assert_allclose(table.quality[i], [q.face_px, q.brightness, q.sharpness], rtol=1e-5)
        assert table.peer_score[i] == pytest.approx(
            peer.predict(load_rgb(table.samples[i].path), face)[0], abs=1e-5
        )


def test_det_points_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ageguard.eval import antispoof as ev
    from ageguard.train.antispoof import curves, folds

    scores = np.array([0.9, 0.8, 0.8, 0.3, 0.1])
    real = np.array([True, False, True, False, False])
    apcer, bpcer = curves.det_points(scores, real)
    assert apcer[0] == 0 and bpcer[0] == 1 and apcer[-1] == 1 and bpcer[-1] == 0
    assert list(zip(apcer, bpcer, strict=True))[2] == (pytest.approx(1 / 3), 0.0)  # 0.8 and above accepted
    rows = [
        {
            "file": f"{i}",
            "family": "webcam",
            "source": f"s{i % 2}",
            "real": bool(r),
            "score": float(s),
            "peer_score": float(1 - s),
            "peer_real": bool(s < 0.5),
            "quality_ok": True,
        }
        for i, (s, r) in enumerate(zip(scores, real, strict=True))
    ]
    from ageguard.vision.liveness.base import DecisionPolicy
    from ageguard.vision.liveness.model import MODEL_DIR

    policy = DecisionPolicy.from_json(json.loads((MODEL_DIR / "antispoof.json").read_text()))
    policies = {"s0": policy, "s1": policy}
    pooled = folds.pooled(
        [
            ev.Row(
                r["file"],
                r["real"],
                "none",
                r["source"],
                "",
                r["score"],
                True,
                r["peer_score"],
                r["peer_real"],
            )
            for r in rows
        ],
        policies,
    )
    written = curves.plot({"rows": rows, "pooled": {"webcam": pooled}}, tmp_path)
    assert [p.name for p in written] == ["antispoof-det-webcam.png"]
    assert written[0].read_bytes()[:4] == b"\x89PNG"


def _own_captures(folder: Path, header: str, rows: list[str]) -> Path:
    """A deployment's labelled folder in fas-dev's layout, with copies of a few fas-dev images."""
    (folder / "images").mkdir(parents=True)
    for row in rows:
        name = row.split(",")[0]
        source = DATA / "fas-dev" / "images" / name
        if source.exists():
            (folder / "images" / name).write_bytes(source.read_bytes())
    (folder / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder


@needs_data
def test_own_captures_train_as_their_own_source(tmp_path: Path) -> None:
    from ageguard.train.antispoof.trainer import load_samples

    # fas-dev's first real and fake rows, relabelled as a shop's own capture setup.
    rows = [r.split(",") for r in (DATA / "fas-dev" / "labels.csv").read_text().splitlines()[1:]]
    real = [r for r in rows if r[1] == "real"][:4]
    fake = [r for r in rows if r[1] == "fake"][:4]
    lines = [f"{r[0]},{r[1]},till-{i % 2}" for i, r in enumerate(real + fake)]
    folder = _own_captures(tmp_path / "shop", "file,label,subject", lines)
    cfg = replace(tiny(), extra=(str(folder),))
    own = [s for s in load_samples(DATA, replace(cfg, limit=0)) if s.source == "shop"]
    assert len(own) == 8 and sum(s.real for s in own) == 4
    assert {s.subject for s in own} == {"shop:till-0", "shop:till-1"}
    assert {s.attack for s in own if not s.real} == {"attack"}
    assert {s.key for s in own} == {f"shop/{r[0]}" for r in real + fake}

    result = run(DATA, tmp_path / "model", cfg, centre_face, log=lambda _: None)
    meta = json.loads(result.policy_json.read_text())
    assert meta["training"]["config"]["extra"] == [str(folder)]
    # limit=3 per source and label: three of the shop's live faces and three of its attacks are in.
    assert meta["training"]["images"] == len(load_samples(DATA, cfg))
    assert sum(s.source == "shop" for s in load_samples(DATA, cfg)) == 6


@needs_data
@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("file,source", "00000.jpg,shop", "missing column(s) label"),
        ("file,label", "00000.jpg,reel", "line 2: label 'reel' is neither real (real, live, bonafide, 1)"),
        ("file,label", "nowhere.jpg,real", "line 2: no image"),
        ("file,label,subject", "00000.jpg", "line 2: no label"),
    ],
)
def test_own_captures_with_bad_labels_are_refused_before_training(
    tmp_path: Path, header: str, row: str, message: str
) -> None:
    import subprocess
    import sys

    folder = _own_captures(tmp_path / "shop", header, [row])
    with pytest.raises(LabelsError, match=re.escape(message)):
        load_labelled(folder)
    ageguard = Path(sys.executable).with_name("ageguard")
    cli = [str(ageguard), "train", "antispoof", "--extra", str(folder), "--out", str(tmp_path)]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "antispoof.onnx").exists()


def test_own_captures_labels_must_be_utf8_csv(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_bytes(b"file,label\n\xff\xfe\x00,real\n")
    with pytest.raises(LabelsError, match="not a UTF-8 CSV file"):
        load_labelled(tmp_path)
    with pytest.raises(LabelsError, match="not found"):
        load_labelled(tmp_path / "elsewhere")
