"""Image fixtures shared by the image, face, API and capture tests (generated in memory, see imagegen)."""

from __future__ import annotations

import pytest
from imagegen import centred_box, face_canvas, jpeg_bytes

from ageguard.vision.detection.base import FaceDetector


@pytest.fixture(scope="session")
def face_detector() -> FaceDetector:
    """The product's RetinaFace detector (installed by the set-up command; a missing model fails)."""
    from ageguard.vision.detection.retinaface import RetinaFaceDetector

    return RetinaFaceDetector()


@pytest.fixture(scope="session")
def capture_jpeg() -> bytes:
    """A 1280x720 JPEG (quality 95, ~250 KB) of one real, centred face at arm's length (box 380 px high,
    inter-ocular distance ~140 px): passes every `normal` image and face rule."""
    return jpeg_bytes(face_canvas(1280, 720, centred_box(1280, 720, 380)), quality=95)
