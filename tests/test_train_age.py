"""``ageguard train age`` on a tiny pool cut from utkface-dev: it runs, is reproducible from its seed, and
the exported head loads through the estimator and answers on a real face.

Needs the ``[train]`` extra (torch) and ../shared/datasets; skipped without them. The tiny pool is written
into the test's own temp dir (the one place a face image may be on disk).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from ageguard.train.age.splits import split_of  # noqa: E402
from ageguard.train.age.trainer import Pool, sample_weights  # noqa: E402
from ageguard.vision.age.estimator import AgeHead, StDevLine  # noqa: E402
from ageguard.vision.age.features import FEATURE_DIM  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
UTK = DATA / "utkface-dev"
needs_data = pytest.mark.skipif(not (UTK / "labels.csv").exists(), reason="no ../shared/datasets")
AGEGUARD = Path(sys.executable).with_name("ageguard")


def tiny_pool(root: Path, count: int = 60) -> Path:
    """``count`` utkface-dev faces, every age band, as a pool of two sources (one with person ids)."""
    with (UTK / "labels.csv").open(newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["file"])
    picked = [r for r in rows if int(r["age"]) < 13][:8] + [r for r in rows if 13 <= int(r["age"]) <= 17][:12]
    picked += [r for r in rows if int(r["age"]) >= 18][: count - len(picked)]
    (root / "images").mkdir(parents=True)
    with (root / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "age", "gender", "race", "source", "identity"])
        for i, r in enumerate(picked):
            shutil.copy(UTK / "images" / r["file"], root / "images" / r["file"])
            source, identity = ("aaf", f"p{i // 2}") if i % 2 else ("utk", "")
            writer.writerow([r["file"], r["age"], r["gender"], r["race"], source, identity])
    return root


def train(pool: Path, tmp: Path, out: Path, seed: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGEGUARD), "train", "age", "--pool", str(pool), "--data", str(tmp / "no-dev-sets"),
         "--cache", str(tmp / "cache"), "--out", str(out), "--seed", str(seed), "--epochs", "3",
         "--json", str(tmp / f"report-{out.name}.json")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@needs_data
def test_tiny_training_is_reproducible_and_served(tmp_path: Path, capture_jpeg: bytes) -> None:
    pool = tiny_pool(tmp_path / "pool")
    first = train(pool, tmp_path, tmp_path / "a")
    assert first.returncode == 0, first.stderr
    second = train(pool, tmp_path, tmp_path / "b")  # reuses the feature cache: the head alone retrains
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "a" / "age_head.onnx").read_bytes() == (tmp_path / "b" / "age_head.onnx").read_bytes()
    meta = json.loads((tmp_path / "a" / "age_head.json").read_text())
    assert meta["feature_dim"] == FEATURE_DIM and meta["recipe"]["seed"] == 0
    report = json.loads((tmp_path / "report-a.json").read_text())
    assert report["counts"]["train"] > 0 and "aaf" in report["test"] or "utk" in report["test"]
    assert "chosen head, unseen test parts" in first.stdout

    # The exported head is what the service loads when AGEGUARD_AGE_HEAD_DIR names its folder.
    from ageguard.settings import Settings
    from ageguard.vision.pipeline import Pipeline

    served = Pipeline(Settings(age_head_dir=tmp_path / "a")).analyse(capture_jpeg)
    shipped = Pipeline(Settings()).analyse(capture_jpeg)
    assert served.age is not None and shipped.age is not None
    assert 1.0 <= served.age.age <= 100.0 and served.age.st_dev >= 1.0
    assert served.age != shipped.age  # the head answered, not the default ensemble
    assert "net:age_head" in served.timings_ms


@needs_data
def test_a_tampered_head_is_refused(tmp_path: Path) -> None:
    from ageguard.errors import AgeGuardError

    pool = tiny_pool(tmp_path / "pool", count=30)
    assert train(pool, tmp_path, tmp_path / "a").returncode == 0
    blob = bytearray((tmp_path / "a" / "age_head.onnx").read_bytes())
    blob[-1] ^= 1
    (tmp_path / "a" / "age_head.onnx").write_bytes(bytes(blob))
    with pytest.raises(AgeGuardError) as exc:
        AgeHead(tmp_path / "a")
    assert exc.value.code == "SERVICE_UNAVAILABLE"


def test_a_missing_pool_is_one_clear_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(AGEGUARD), "train", "age", "--pool", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2 and "no labels.csv" in run.stderr and "Traceback" not in run.stderr


def test_splits_keep_a_person_together_and_dev_sets_unseen() -> None:
    one_person = {split_of("aaf", f"img{i}.jpg", "person-7") for i in range(50)}
    assert one_person == {split_of("aaf", "x", "person-7")}
    parts = [split_of("utk", f"{i}.jpg") for i in range(2000)]
    assert 0.07 < parts.count("test") / 2000 < 0.13 and 0.07 < parts.count("val") / 2000 < 0.13
    assert {split_of("utkface-dev", f"{i}.jpg") for i in range(100)} == {"test"}


def test_weights_lift_scarce_bands() -> None:
    n = 200
    age = np.array([15.0] * 10 + [35.0] * (n - 10), np.float32)
    pool = Pool(
        x=np.zeros((n, FEATURE_DIM), np.float32), age=age, gender=np.zeros(n, np.int8),
        race=np.zeros(n, np.int8), source=np.array(["utk"] * n), name=np.array([f"{i}" for i in range(n)]),
        identity=np.array([""] * n), quality=np.zeros((n, 3), np.float32),
    )  # fmt: skip
    w = sample_weights(pool, teen_boost=2.0)
    assert w[:10].mean() > 5 * w[10:].mean()  # ten teens outweigh their count many times over
    assert w.mean() == pytest.approx(1.0)


def test_st_dev_line_floor_and_quality() -> None:
    line = StDevLine(a=1.0, b=0.5, c=0.05, k=1.2, min_st_dev=1.0)
    assert line.st_dev(20.0, 2.0, 1.0) == pytest.approx((1.0 + 1.0 + 1.0) * 1.2)
    assert line.st_dev(20.0, 2.0, 2.0) == pytest.approx(2 * (1.0 + 1.0 + 1.0) * 1.2)
    assert StDevLine(0.0, 0.0, 0.0, 1.0, 1.0).st_dev(30.0, 0.0, 1.0) == 1.0


def _probe_pool(age: np.ndarray, faceres_age: np.ndarray, faceapi_age: np.ndarray, source: str) -> Pool:
    """A pool whose faceres-deep distribution is all on one age and whose face-api age is given."""
    n = len(age)
    x = np.zeros((n, FEATURE_DIM), np.float32)
    x[np.arange(n), 1024 + faceres_age.astype(int) - 1] = 1.0  # probability 1 on that age (ages 1..100)
    x[:, 1124] = faceapi_age / 100.0
    return Pool(
        x=x, age=age.astype(np.float32), gender=np.zeros(n, np.int8), race=np.zeros(n, np.int8),
        source=np.array([source] * n), name=np.array([f"{source}{i}" for i in range(n)]),
        identity=np.array([""] * n), quality=np.zeros((n, 3), np.float32),
    )  # fmt: skip


def test_probe_reports_each_networks_bias_per_band() -> None:
    from ageguard.train.age import probe

    age = np.array([15.0] * 12 + [40.0] * 12)
    pool = _probe_pool(age, faceres_age=age + 4, faceapi_age=age - 2, source="aaf")
    rows = {r["band"]: r for r in probe.network_bands(pool)}
    assert set(rows) == {"13-17", "31-49"}  # bands with too few faces are left out
    teen = rows["13-17"]
    assert teen["n"] == 12
    assert teen["faceres-deep"] == {"bias": pytest.approx(4.0), "mae": pytest.approx(4.0)}
    assert teen["face-api"]["bias"] == pytest.approx(-2.0)
    assert teen["mean"]["bias"] == pytest.approx(1.0) and teen["mean_ge_25"] == 0.0
    assert rows["31-49"]["mean_ge_25"] == 1.0


def test_probe_sees_a_minor_signal_the_age_misses() -> None:
    from ageguard.train.age import probe

    rng = np.random.default_rng(0)
    age = np.concatenate([rng.integers(13, 18, 60), rng.integers(25, 60, 60)]).astype(np.float64)
    # Every estimate says 22, so the age cannot rank teenagers above adults...
    pool = _probe_pool(age, faceres_age=np.full(120, 22.0), faceapi_age=np.full(120, 22.0), source="utk")
    # ...but one descriptor number does: the classifier must find it on faces it was not fitted on.
    pool.x[:, 7] = (age < 18) + 0.3 * rng.standard_normal(120)
    train, unseen = pool.take(np.arange(120) % 2 == 0), pool.take(np.arange(120) % 2 == 1)
    (row,) = probe.minor_separability(train, unseen)
    assert row["teens"] == 30 and row["adults"] == 30
    assert row["classifier_auc"] > 0.95
    assert row["age_auc"] == pytest.approx(0.5)
    assert "| utk | 30 | 30 |" in probe.markdown(probe.network_bands(pool), [row])
