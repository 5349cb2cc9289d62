"""End to end in a real browser: Debian's Chromium, headless, driven by playwright-core (tests/capture/
browser.mjs), on the /capture/demo page of a live ``ageguard serve`` (two workers, so capture sessions
cross processes), with a fake camera playing a .y4m made here from skimage's astronaut.

Screenshots of each guidance state at a phone and a laptop width go to docs/capture/ (linked from
docs/capture.md); set AGEGUARD_CAPTURE_SCREENSHOTS to write them elsewhere.

Needs ``chromium`` (apt) and ``npm ci`` in tests/capture (scripts/test.sh and .ci/run do both);
skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from facescene import scene, write_y4m
from live_server import LiveServer, acquire, release

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = os.environ.get("AGEGUARD_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("AGEGUARD_CAPTURE_SCREENSHOTS", ROOT / "docs" / "capture"))
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
STEP_TIMEOUT_MS = 45_000

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("node") is None:
        return "no node"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core not installed (cd tests/capture && npm ci)"
    return None


if _missing():
    pytest.skip(_missing() or "", allow_module_level=True)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    server = acquire()
    try:
        yield server
    finally:
        release()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fake-camera videos (a few identical frames; Chromium loops them), made fresh for this run."""
    root = tmp_path_factory.mktemp("y4m")
    scenes = {"good": scene(), "dark": scene(gain=0.2), "off_centre": scene(cx=0.12)}
    videos = {name: write_y4m(root / f"{name}.y4m", [rgb] * 3) for name, rgb in scenes.items()}
    # A face that passes every rule but keeps moving: 4 frames left, 4 right, at 15 fps (loops).
    left, right = scene(cx=0.44), scene(cx=0.56)
    videos["moving"] = write_y4m(root / "moving.y4m", [left] * 4 + [right] * 4)
    return videos


def drive(
    live: LiveServer, tmp: Path, y4m: Path | None, camera: str, steps: list[dict[str, Any]]
) -> list[dict]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    plan = {
        "url": live.url + "/capture/demo",
        "chromium": CHROMIUM,
        "y4m": str(y4m) if y4m else None,
        "camera": camera,
        "screenshots": str(SHOTS),
        "steps": [{"timeoutMs": STEP_TIMEOUT_MS, **step} for step in steps],
    }
    plan_path = tmp / "plan.json"
    plan_path.write_text(json.dumps(plan))
    run = subprocess.run(
        ["node", str(HERE / "browser.mjs"), str(plan_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in result, result["error"]
    for step in result["steps"]:
        assert step["ok"], (step["name"], step.get("error"), step.get("state"), live.log_text()[-3000:])
        assert step["errors"] == [], (step["name"], step["errors"])
    steps_out: list[dict] = result["steps"]
    return steps_out


@pytest.fixture(scope="module")
def good_run(
    live: LiveServer, videos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> list[dict]:
    steps = [
        # Automatic capture, then the demo backend's secure /age request and /antispoofing.
        {"name": "auto", "viewport": LAPTOP, "waitFor": "phase:result", "shot": "laptop-result.png"},
        # The guide turns green and the person is asked to hold still.
        {"name": "good-laptop", "viewport": LAPTOP, "query": "?auto=0", "waitFor": "guidance:good",
         "settleMs": 500, "shot": "laptop-hold-still.png"},
        {"name": "good-phone", "viewport": PHONE, "query": "?auto=0", "waitFor": "guidance:good",
         "settleMs": 500, "shot": "phone-hold-still.png"},
        # Manual capture from the keyboard (auto capture off), kept on the page for the tamper tests.
        {"name": "keyboard", "viewport": PHONE, "query": "?auto=0&autosubmit=0", "keyboard": True,
         "waitFor": "phase:captured", "tamper": True},
    ]  # fmt: skip
    return drive(live, tmp_path_factory.mktemp("good"), videos["good"], "granted", steps)


def guidance_steps(key: str, shot: str) -> list[dict[str, Any]]:
    return [
        {"name": f"{shot}-laptop", "viewport": LAPTOP, "waitFor": f"guidance:{key}", "settleMs": 400,
         "shot": f"laptop-{shot}.png"},
        {"name": f"{shot}-phone", "viewport": PHONE, "waitFor": f"guidance:{key}", "settleMs": 400,
         "shot": f"phone-{shot}.png"},
    ]  # fmt: skip


def test_good_face_is_captured_automatically_and_estimated(good_run: list[dict]) -> None:
    auto = good_run[0]["state"]
    assert auto["guidance"] == "captured" and auto["status"] == "Photo taken."
    capture = auto["capture"]
    assert capture["auto"] is True and capture["mimeType"] == "image/jpeg"
    assert (capture["width"], capture["height"]) == (1280, 720)  # the camera's best resolution
    assert 50_000 <= capture["bytes"] <= 1_500_000
    assert capture["secure"] == ["signature", "token", "verification", "version"]
    age = auto["result"]["age"]
    assert age["status"] == 200, age
    assert 15 < age["body"]["age"]["age"] < 70 and age["body"]["age"]["st_dev"] > 0
    assert auto["ageStatus"] == "200" and auto["age"] == f"{age['body']['age']['age']:.1f}"
    anti = auto["result"]["antispoofing"]  # the verdict, or why there is none (no liveness model yet)
    if anti["status"] == 200:
        assert auto["liveness"] == anti["body"]["antispoofing"]["prediction"]
    else:
        assert auto["liveness"].startswith("Unavailable")


def test_good_face_guidance_is_announced(good_run: list[dict]) -> None:
    for step in good_run[1:3]:
        state = step["state"]
        assert state["guidance"] == "good" and state["status"] == "That's good. Hold still…"
        assert state["statusRole"] == "status" and state["statusLive"] == "polite"


def test_keyboard_capture_and_tampered_secure_blocks(good_run: list[dict]) -> None:
    step = good_run[3]
    assert step["focused"] == "Take photo"  # reached with Tab, pressed with Enter
    assert step["state"]["capture"]["auto"] is False
    codes = {name: (r["status"], r["code"]) for name, r in step["tamper"].items()}
    assert codes == {
        "signature": (400, "INVALID_SECURE_SIGNATURE"),
        "image": (400, "INVALID_SECURE_SIGNATURE"),
        "verification": (400, "INVALID_SECURE_SIGNATURE"),
        "version": (400, "SECURE_VERSION_NOT_FOUND"),
        "token": (400, "SECURE_SESSION_NOT_FOUND"),
        "genuine": (200, None),
        "replay": (401, "INVALID_SECURE_SESSION"),
    }
    assert step["tamper"]["genuine"]["age"]["age"] > 0


def test_dark_face_asks_for_light(live: LiveServer, videos: dict[str, Path], tmp_path: Path) -> None:
    for step in drive(live, tmp_path, videos["dark"], "granted", guidance_steps("too_dark", "too-dark")):
        assert step["state"]["status"] == "It's too dark. Move somewhere brighter or face a light."
        assert step["state"]["phase"] == "guiding" and step["state"]["capture"] is None


def test_off_centre_face_asks_to_centre(live: LiveServer, videos: dict[str, Path], tmp_path: Path) -> None:
    # The face is at the left of the camera image: on the mirrored view it is on the right, so the
    # person moves to their left.
    for step in drive(
        live, tmp_path, videos["off_centre"], "granted", guidance_steps("centre_left", "centre")
    ):
        assert step["state"]["status"] == "Centre your face in the oval: move a little to your left."
        assert step["state"]["capture"] is None


def test_moving_face_is_asked_to_hold_still(
    live: LiveServer, videos: dict[str, Path], tmp_path: Path
) -> None:
    steps = [{"name": "moving", "viewport": LAPTOP, "waitFor": "guidance:hold_still"}]
    (step,) = drive(live, tmp_path, videos["moving"], "granted", steps)
    # The face keeps moving, so the steady moment never comes: no capture, "hold still" (or, between two
    # moves, "That's good. Hold still…").
    assert step["state"]["status"].endswith("Hold still…") and step["state"]["capture"] is None


def test_camera_refused(live: LiveServer, videos: dict[str, Path], tmp_path: Path) -> None:
    for step in drive(
        live, tmp_path, videos["good"], "denied", guidance_steps("camera_denied", "camera-refused")
    ):
        assert step["state"]["alert"].startswith("Camera access was refused.")
        assert step["state"]["phase"] == "camera-error"


def test_no_camera(live: LiveServer, tmp_path: Path) -> None:
    for step in drive(live, tmp_path, None, "absent", guidance_steps("camera_absent", "no-camera")):
        assert step["state"]["alert"].startswith("No camera was found.")
