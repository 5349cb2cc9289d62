"""``AGEGUARD_LIVENESS_MODEL_DIR`` on a real ``ageguard serve``: a retrained model folder is served, and a
broken one leaves age estimation up while anti-spoofing answers SERVICE_UNAVAILABLE."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import live_server
import pytest
from api_images import face_jpeg
from tests_api_helpers import Api, assert_error

from ageguard.hub import Hub
from ageguard.signing import load_private_key
from ageguard.vision.liveness.model import MODEL_DIR

BODY = {"img": base64.b64encode(face_jpeg()).decode(), "level_of_assurance": "medium"}


def strict_model(folder: Path) -> Path:
    """The shipped network with a `medium` level no score below 1 passes: every face comes out fake (the
    shipped policy calls this test face real, score 0.999)."""
    folder.mkdir()
    for name in ("antispoof.json", "antispoof.onnx"):
        shutil.copy(MODEL_DIR / name, folder / name)
    meta = json.loads((folder / "antispoof.json").read_text())
    meta["levels"]["medium"] = {"threshold": 1.0, "lower": 1.0, "upper": 1.0}
    (folder / "antispoof.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """A live server whose liveness model folder is the strict model ("strict") or absent ("missing")."""
    folder = strict_model(tmp_path / "model") if request.param == "strict" else tmp_path / "missing"
    env = {"AGEGUARD_LIVENESS_MODEL_DIR": str(folder)}
    server = live_server.start(tmp_path / "server", workers=1, extra_env=env)
    hub = Hub(server.database_url)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            key = load_private_key(server.key_path.read_bytes())
            yield Api(client, hub, None, None, server.sdk_id, key)  # type: ignore[arg-type]
    finally:
        hub.close()
        live_server.stop_process(server.proc)


@pytest.mark.parametrize("served", ["strict"], indirect=True)
def test_the_configured_model_folder_is_served(served: Api) -> None:
    reply = served.send("/antispoofing", BODY)
    assert reply.status_code == 200, reply.text
    assert reply.json()["antispoofing"]["prediction"] == "fake"


@pytest.mark.parametrize("served", ["missing"], indirect=True)
def test_a_missing_model_folder_keeps_age_up(served: Api) -> None:
    age = served.send("/age", {"img": BODY["img"]})
    assert age.status_code == 200, age.text
    assert isinstance(age.json()["age"]["age"], float)
    assert_error(served.send("/antispoofing", BODY), "SERVICE_UNAVAILABLE")
