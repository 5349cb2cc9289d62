"""State that must be shared by every instance through the one database: nonces, secure-capture sessions,
applications; and metrics that say which instance they come from."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cluster import Cluster, Instance, Signed, error_code, metric_value, sign
from live_server import ageguard_command

from ageguard.capture.secure import encode_verification, sign_capture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "capture"))
from facescene import scene  # noqa: E402  (tests/capture's camera scenes of one real face)

#: How long an application change made with the CLI may take to reach every instance. Applications are
#: not cached: each request reads its application from the database (hub.Hub.find_app), so the change
#: holds from the next request on, on every instance (docs/deploy.md, "Shared state").
APP_CHANGE_DELAY_S = 0.0


def simultaneous(pairs: list[tuple[Signed, Instance]]) -> list[httpx.Response]:
    """Send each request to its instance at the same moment, on connections opened beforehand."""
    clients = [httpx.Client(base_url=instance.url, timeout=60) for _, instance in pairs]
    for client in clients:
        assert client.get("/health").status_code == 200  # the connection is open and warm
    barrier = threading.Barrier(len(pairs))
    results: list[httpx.Response | BaseException | None] = [None] * len(pairs)

    def send(i: int) -> None:
        signed, instance = pairs[i]
        barrier.wait(10)
        try:
            results[i] = signed.send(clients[i], instance.url)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for client in clients:
        client.close()
    assert all(isinstance(r, httpx.Response) for r in results), results
    return [r for r in results if isinstance(r, httpx.Response)]


# ---------------------------------------------------------------------------------------------- nonces


def test_a_request_accepted_by_one_instance_is_a_replay_on_every_other(
    cluster: Cluster, face_body: dict[str, Any]
) -> None:
    a, b, c = cluster.instances
    signed = cluster.app.sign("/age", face_body)
    first = signed.send(None, a.url)
    assert first.status_code == 200, first.text
    for instance in (b, c, a):
        again = signed.send(None, instance.url)
        assert (again.status_code, error_code(again)) == (401, "INVALID_NONCE"), (instance.name, again.text)
    through = signed.send(None, cluster.nginx.url)
    assert (through.status_code, error_code(through)) == (401, "INVALID_NONCE")


def test_two_copies_at_the_same_moment_on_two_instances_get_exactly_one_200(
    cluster: Cluster, face_body: dict[str, Any], report_counts: Callable[[str], None]
) -> None:
    instances = cluster.instances
    outcomes = []
    for i in range(4):
        signed = cluster.app.sign("/age", face_body)
        first, second = instances[i % 3], instances[(i + 1) % 3]
        responses = simultaneous([(signed, first), (signed, second)])
        outcome = sorted((r.status_code, error_code(r)) for r in responses)
        outcomes.append(outcome)
        assert outcome == [(200, None), (401, "INVALID_NONCE")], (first.name, second.name, outcome)
    report_counts(f"simultaneous copies on two instances, {len(outcomes)} rounds: {outcomes}")


# ---------------------------------------------------------------------------------------------- capture


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _jpeg(rgb: Any, quality: int, width: int | None = None) -> bytes:
    import io

    from PIL import Image

    im = Image.fromarray(rgb)
    if width is not None:
        im = im.resize((width, width * im.height // im.width), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_a_secure_capture_session_opened_on_one_instance_is_used_on_another_once(cluster: Cluster) -> None:
    a, b, c = cluster.instances
    opened = cluster.app.sign("/capture/sessions", {}).send(None, a.url)
    assert opened.status_code == 200, opened.text
    session = opened.json()
    rgb = scene()
    preview = {"img": _b64(_jpeg(rgb, 85, 640)), "width": rgb.shape[1], "height": rgb.shape[0]}
    for instance in (b, c, b):  # the module's previews, spread over the other instances
        checked = httpx.post(instance.url + "/capture/check", json={**preview, "token": session["token"]})
        assert checked.status_code == 200 and checked.json()["ok"], checked.text
    image = _jpeg(rgb, 95)
    final = httpx.post(
        c.url + "/capture/check", json={"img": _b64(image), "final": True, "token": session["token"]}
    )
    assert final.status_code == 200 and final.json()["ok"], final.text
    assert final.json()["session"] == {"frames": 3, "good": 3, "finals": 1}  # counted across instances

    verification = encode_verification({"v": 1, "nonce": "n0", "frames": 3, "good": 3})
    key = base64.urlsafe_b64decode(session["key"] + "=" * (-len(session["key"]) % 4))
    secure = {
        "version": 1,
        "token": session["token"],
        "signature": sign_capture(key, session["token"], image, verification),
        "verification": verification,
    }
    body = {"img": _b64(image), "secure": secure}
    # The same capture submitted twice at once, through two more instances, each a fresh signed request:
    # the session is consumed by exactly one.
    responses = simultaneous(
        [
            (cluster.app.sign("/age", body, query="secure=true"), b),
            (cluster.app.sign("/age", body, query="secure=true"), c),
        ]
    )
    outcome = sorted((r.status_code, error_code(r)) for r in responses)
    assert outcome == [(200, None), (401, "INVALID_SECURE_SESSION")], outcome
    later = cluster.app.sign("/age", body, query="secure=true").send(None, a.url)
    assert (later.status_code, error_code(later)) == (401, "INVALID_SECURE_SESSION"), later.text
    after = httpx.post(a.url + "/capture/check", json={**preview, "token": session["token"]})
    assert error_code(after) == "INVALID_SECURE_SESSION"


# ---------------------------------------------------------------------------------------------- apps


def _cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = cluster.instances[0].env()
    run = subprocess.run(
        [*ageguard_command(), *args], capture_output=True, text=True, env=env, cwd=cluster.root, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def _everywhere(cluster: Cluster, make: Any, expected: tuple[int, str | None]) -> None:
    """Each instance answers ``expected`` to a fresh request, within APP_CHANGE_DELAY_S of the change."""
    for instance in cluster.instances:
        deadline = time.monotonic() + APP_CHANGE_DELAY_S
        while True:
            response = make().send(None, instance.url)
            got = (response.status_code, error_code(response))
            if got == expected or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert got == expected, (instance.name, response.text)


def test_applications_changed_with_the_cli_take_effect_on_every_instance(
    cluster: Cluster, tmp_path: Path, face_body: dict[str, Any]
) -> None:
    from ageguard.signing import load_private_key

    pem = tmp_path / "till.pem"
    created = _cli(cluster, "app", "create", "--name", "till-app", "--private-key-out", str(pem))
    sdk_id = json.loads(created.stdout.strip().splitlines()[-1])["sdk_id"]
    key = load_private_key(pem.read_bytes())

    def request() -> Signed:
        return sign(sdk_id, key, "/age", face_body)

    _everywhere(cluster, request, (200, None))
    _cli(cluster, "app", "disable", sdk_id)
    _everywhere(cluster, request, (403, "DISABLED_APP_STATE"))
    _cli(cluster, "app", "enable", sdk_id)
    _everywhere(cluster, request, (200, None))
    _cli(cluster, "app", "set-endpoints", sdk_id, "--endpoints", "age-verify")
    _everywhere(cluster, request, (401, "UNAUTHORIZED"))


# ---------------------------------------------------------------------------------------------- metrics


def test_each_instance_labels_its_metrics(cluster: Cluster, face_body: dict[str, Any]) -> None:
    for instance in cluster.instances:
        assert cluster.app.sign("/age", face_body).send(None, instance.url).status_code == 200
    for instance in cluster.instances:
        text = httpx.get(instance.url + "/metrics").text
        assert metric_value(text, "ageguard_requests_total", ageguard_instance=instance.name, code="OK") >= 1
        others = {i.name for i in cluster.instances} - {instance.name}
        assert not any(f'ageguard_instance="{name}"' in text for name in others)
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert all(f'ageguard_instance="{instance.name}"' in line for line in samples), samples[:3]


def test_several_workers_of_one_instance_sum_into_its_metrics(
    cluster: Cluster, face_body: dict[str, Any]
) -> None:
    """Two uvicorn workers: /metrics counts every request, whichever worker answers it or the scrape."""
    instance = Instance("ag-workers", cluster.root, cluster.db_url, workers=2)
    instance.start()
    try:
        instance.wait_ready()
        streak = 0  # both workers loaded: ten /ready in a row on new connections, whichever worker takes them
        deadline = time.monotonic() + 60
        while streak < 10 and time.monotonic() < deadline:
            streak = streak + 1 if instance.status() == 200 else 0
        sent = 6
        for _ in range(sent):  # a new connection each: the kernel spreads them over the workers
            assert cluster.app.sign("/age", face_body).send(None, instance.url).status_code == 200
        pids = {
            int(line.split("[")[1].split("]")[0])
            for line in instance.log_text().splitlines()
            if "Started server process" in line
        }
        assert len(pids) == 2, instance.log_text()[-2000:]
        for _ in range(4):  # each scrape may land on either worker: every one sees the sum
            text = httpx.get(instance.url + "/metrics").text
            counted = metric_value(text, "ageguard_requests_total", ageguard_instance="ag-workers", code="OK")
            assert counted == sent, text[-2000:]
    finally:
        instance.stop()
