"""Spare cores (``pixel_threads``): a request's pixel work moves to helper threads; no result changes."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from imagegen import centred_box, face_canvas, jpeg_bytes, png_bytes

from ageguard.errors import AgeGuardError
from ageguard.eval.sample import sample_capture
from ageguard.settings import get_settings
from ageguard.vision.pipeline import Pipeline
from ageguard.vision.spare import INLINE, SparePool, spare_pool


def test_a_job_runs_on_a_helper_thread() -> None:
    pool = SparePool(1)
    assert pool.submit(threading.current_thread).result() is not threading.current_thread()


def test_a_job_no_helper_has_begun_is_done_by_the_caller() -> None:
    pool = SparePool(1)
    release = threading.Event()
    busy = pool.submit(release.wait, 10.0)  # the only helper is busy with another request's work
    try:
        # Without taking the job back, the caller would wait up to 10 s for the helper.
        assert pool.submit(threading.current_thread).result() is threading.current_thread()
    finally:
        release.set()
    assert busy.result() is True


def test_without_helpers_jobs_run_on_the_caller_when_asked_for() -> None:
    ran: list[str] = []
    job = INLINE.submit(ran.append, "done")
    assert ran == []
    job.result()
    assert ran == ["done"]


def test_a_failing_job_raises_where_its_result_is_asked_for() -> None:
    def fail() -> None:
        raise AgeGuardError("FACE_NOT_FOUND")

    for pool in (INLINE, SparePool(1)):
        with pytest.raises(AgeGuardError) as info:
            pool.submit(fail).result()
        assert info.value.code == "FACE_NOT_FOUND"


def test_pixel_threads_setting_sizes_the_process_pool() -> None:
    assert spare_pool(1).threads == 0
    assert spare_pool(3).threads == 2
    assert spare_pool(0).threads >= 1
    assert spare_pool(3) is spare_pool(3)


def test_a_forked_child_gets_its_own_pool() -> None:
    parent = spare_pool(2)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its pool must run jobs on threads of its own
        try:
            child = spare_pool(2)
            ok = child is not parent and child.submit(threading.current_thread).result() is not (
                threading.current_thread()
            )
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(sample_capture(1280, 720, "JPEG", 95), id="photo-1280x720-jpeg"),
        pytest.param(sample_capture(1920, 1080, "PNG"), id="photo-1920x1080-png"),
        pytest.param(sample_capture(640, 480, "JPEG", 90), id="photo-640x480-jpeg"),
        pytest.param(jpeg_bytes(face_canvas(1280, 720, centred_box(1280, 720, 380)), quality=95), id="drawn"),
        pytest.param(png_bytes(face_canvas(800, 600, centred_box(800, 600, 400))), id="drawn-png"),
    ],
)
def test_spare_threads_change_no_answer(data: bytes) -> None:
    """Ages, st_dev and liveness scores are bit-identical with and without helpers (and repeatedly)."""
    settings = get_settings()
    serial = Pipeline(settings.model_copy(update={"pixel_threads": 1}))
    spread = Pipeline(settings.model_copy(update={"pixel_threads": 2}))

    def answer(pipeline: Pipeline) -> tuple[float, float, str, float]:
        analysis = pipeline.analyse(data, level="low", liveness=True)
        assert analysis.age is not None and analysis.liveness is not None
        live = analysis.liveness
        return analysis.age.age, analysis.age.st_dev, live.prediction, live.score

    expected = answer(serial)
    assert [answer(spread) for _ in range(3)] == [expected] * 3


def test_concurrent_requests_sharing_the_helpers_get_the_serial_answers() -> None:
    """Several requests at once contend for one helper (jobs are taken back): every answer stays exact."""
    settings = get_settings()
    images = [
        sample_capture(1280, 720, "JPEG", 95),
        jpeg_bytes(face_canvas(1280, 720, centred_box(1280, 720, 380)), quality=95),
        png_bytes(face_canvas(800, 600, centred_box(800, 600, 400))),
    ]
    serial = Pipeline(settings.model_copy(update={"pixel_threads": 1}))
    shared = Pipeline(settings.model_copy(update={"pixel_threads": 2}))

    def answer(pipeline: Pipeline, data: bytes) -> tuple[float, float, float]:
        analysis = pipeline.analyse(data, level="low", liveness=True)
        assert analysis.age is not None and analysis.liveness is not None
        return analysis.age.age, analysis.age.st_dev, analysis.liveness.score

    expected = [answer(serial, data) for data in images]
    with ThreadPoolExecutor(max_workers=4) as requests:
        got = list(requests.map(lambda i: answer(shared, images[i % 3]), range(12)))
    assert got == [expected[i % 3] for i in range(12)]
