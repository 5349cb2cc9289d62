"""`ageguard estimate` as a user runs it: a real subprocess over a folder of mixed files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from imagegen import centred_box, face_canvas, jpeg_bytes, png_bytes, textured
from PIL import Image

from ageguard.settings import get_settings

AGEGUARD = Path(sys.executable).with_name("ageguard")
MARKER = b"AGEGUARD-TEST-MARKER-7f3c"
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG")


def _with_comment(data: bytes, comment: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, format="JPEG", quality=96, comment=comment)
    return out.getvalue()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_estimate_json_over_a_folder_keeps_going_and_writes_no_image(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    face = face_canvas(1280, 720, centred_box(1280, 720, 380))
    (inputs / "a_face.jpg").write_bytes(_with_comment(jpeg_bytes(face, quality=96), MARKER))
    (inputs / "nested" / "b_face.png").write_bytes(png_bytes(face))
    (inputs / "c_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated " + MARKER)
    (inputs / "d_noface.png").write_bytes(png_bytes(textured(480, 640)))
    (inputs / "notes.txt").write_text("not an image, not listed")

    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    model_dir = get_settings().model_dir
    before = _snapshot(model_dir)
    env = {**os.environ, "TMPDIR": str(private_tmp), "AGEGUARD_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [str(AGEGUARD), "estimate", "--json", "--validation", "low", str(inputs)],
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    lines = [json.loads(line) for line in run.stdout.decode().splitlines()]
    by_name = {Path(line["file"]).name: line for line in lines}
    assert sorted(by_name) == ["a_face.jpg", "b_face.png", "c_broken.jpg", "d_noface.png"]
    for name in ("a_face.jpg", "b_face.png"):
        assert set(by_name[name]) == {"file", "age", "st_dev"}
        assert 20 < by_name[name]["age"] < 60
    assert by_name["c_broken.jpg"]["error_code"] == "INVALID_B64_IMAGE"
    assert by_name["d_noface.png"]["error_code"] == "FACE_NOT_FOUND"
    assert all("error_message" in by_name[n] for n in ("c_broken.jpg", "d_noface.png"))

    # Data minimisation: no image bytes in the temp dir (onnxruntime leaves a small session-id file
    # there), the model cache unchanged, the marker nowhere.
    for leftover in private_tmp.rglob("*"):
        if leftover.is_file():
            content = leftover.read_bytes()
            assert not any(sig in content for sig in IMAGE_SIGNATURES + (MARKER,)), leftover
    assert _snapshot(model_dir) == before
    assert not (tmp_path / "home").exists() or all(
        MARKER not in p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file()
    )
    assert MARKER not in run.stderr


def test_estimate_all_bad_files_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    run = subprocess.run(
        [str(AGEGUARD), "estimate", "--json", "--validation", "low", str(bad)],
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert json.loads(run.stdout)["error_code"] == "INVALID_B64_IMAGE"
