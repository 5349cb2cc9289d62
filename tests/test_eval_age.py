"""The age metrics, and `ageguard eval age` on a few labelled faces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from imagegen import centred_box, face_canvas, jpeg_bytes

from ageguard.eval.age import Label, join, markdown, metrics

AGEGUARD = Path(sys.executable).with_name("ageguard")


def test_metrics_bands_thresholds_and_coverage() -> None:
    labels = {
        "a.jpg": Label(15, "0", "0"),
        "b.jpg": Label(40, "1", "2"),
        "c.jpg": Label(8, "1", "1"),
        "d.jpg": Label(30, "0", "0"),
    }
    results = [
        {"file": "x/a.jpg", "age": 26.0, "st_dev": 4.0},  # teen over 25: error 11 > 2 sd
        {"file": "x/b.jpg", "age": 41.0, "st_dev": 3.0},  # error 1 <= 1 sd
        {"file": "x/c.jpg", "age": 14.0, "st_dev": 4.0},  # child over 13: error 6 <= 2 sd
        {"file": "x/d.jpg", "error_code": "FACE_NOT_FOUND"},
    ]
    rows, failures = join(labels, results)
    report = metrics(rows, failures)
    assert failures == {"FACE_NOT_FOUND": 1}
    assert report["n"] == 3
    assert report["mae"] == pytest.approx((11 + 1 + 6) / 3)
    assert report["bands"]["13-17"] == {
        "n": 1, "mae": 11.0, "coverage_1sd": 0.0, "coverage_2sd": 0.0, "mean_st_dev": 4.0
    }
    assert report["bands"]["0-12"]["coverage_2sd"] == 1.0 and report["bands"]["0-12"]["coverage_1sd"] == 0.0
    assert report["share_13_17_estimated_ge_25"] == 1.0
    assert report["share_6_11_estimated_ge_13"] == 1.0
    assert report["share_25plus_estimated_lt_25"] == 0.0
    assert report["coverage_1sd"] == pytest.approx(1 / 3)
    assert report["coverage_2sd"] == pytest.approx(2 / 3)
    assert report["gender"]["female"]["n"] == 2
    assert "| age 13-17 | 1 | 11.00 | 0.0% | 0.0% | 4.00 |" in markdown(report)


def test_eval_age_command_writes_its_report(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("one.jpg", "two.jpg"):
        (images / name).write_bytes(jpeg_bytes(face_canvas(640, 480, centred_box(640, 480, 260)), quality=95))
    labels = tmp_path / "labels.csv"
    labels.write_text("file,age,gender,race\none.jpg,42,1,0\ntwo.jpg,42,1,0\n")
    out = tmp_path / "report.json"
    run = subprocess.run(
        [str(AGEGUARD), "eval", "age", "--images", str(images), "--labels", str(labels), "--json", str(out)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    report = json.loads(out.read_text())
    assert report["n"] == 2
    assert report["mae"] < 15
    assert "MAE" in run.stdout.decode()
