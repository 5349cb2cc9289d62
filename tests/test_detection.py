"""RetinaFace on real faces (shared dev sets, scikit-image's astronaut) and on faceless images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ageguard.vision.detection import FaceDetector, RetinaFaceDetector
from ageguard.vision.detection.retinaface import nms

skdata = pytest.importorskip("skimage.data")

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut())


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _sample(dataset: str, n: int) -> list[Path]:
    folder = DATASETS / dataset / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} not available")
    with (DATASETS / dataset / "labels.csv").open() as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    step = max(1, len(files) // n)
    return [folder / f for f in files[::step][:n]]


def test_is_a_face_detector(detector: RetinaFaceDetector) -> None:
    assert isinstance(detector, FaceDetector)


def test_astronaut_box_and_landmarks(detector: RetinaFaceDetector, astronaut: np.ndarray) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    # RetinaFace (WIDER FACE) boxes run from the hairline to the chin; measured 177.9, 56.8,
    # 273.1, 177.2. A tight eyebrow-to-chin square would be about 179, 83, 266, 170.
    np.testing.assert_allclose(face.box, (177.9, 56.8, 273.1, 177.2), atol=3.0)
    right_eye, left_eye, nose, mouth_right, mouth_left = face.landmarks
    # The subject's right eye is on the image's left for a frontal face.
    assert right_eye[0] < nose[0] < left_eye[0]
    assert mouth_right[0] < mouth_left[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(mouth_right[1], mouth_left[1])
    assert 40 < face.interocular < 50
    assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)


def test_box_scales_with_image(detector: RetinaFaceDetector, astronaut: np.ndarray) -> None:
    """A 2x upload (downscaled internally) gives the same face, in the upload's pixels."""
    big = np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.Resampling.BILINEAR))
    (face,) = detector.detect(big)
    (ref,) = detector.detect(astronaut)
    np.testing.assert_allclose(np.array(face.box) / 2, ref.box, atol=4.0)


def test_two_faces_side_by_side(detector: RetinaFaceDetector, astronaut: np.ndarray) -> None:
    faces = detector.detect(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))
    assert len(faces) == 2
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in faces)
    assert centres[0] < 512 < centres[1]
    assert faces[0].score >= faces[1].score


@pytest.mark.parametrize("kind", ["noise", "flat-grey", "black", "white"])
def test_no_face(detector: RetinaFaceDetector, kind: str) -> None:
    shape = (480, 640, 3)
    image = {
        "noise": np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8),
        "flat-grey": np.full(shape, 128, np.uint8),
        "black": np.zeros(shape, np.uint8),
        "white": np.full(shape, 255, np.uint8),
    }[kind]
    assert detector.detect(image) == []


@pytest.mark.parametrize("size", [(32, 32), (32, 4000), (4000, 32), (3000, 4000), (33, 47)])
def test_any_size(detector: RetinaFaceDetector, size: tuple[int, int]) -> None:
    image = np.full((*size, 3), 100, np.uint8)
    assert detector.detect(image) == []


def test_small_image_face(detector: RetinaFaceDetector, astronaut: np.ndarray) -> None:
    small = np.asarray(Image.fromarray(astronaut[40:220, 150:300]).resize((48, 58)))
    faces = detector.detect(small)
    assert len(faces) == 1
    assert 0 <= faces[0].box[0] < 20 and 28 < faces[0].box[2] <= 48


def test_rejects_non_rgb(detector: RetinaFaceDetector) -> None:
    with pytest.raises(ValueError):
        detector.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError):
        detector.detect(np.zeros((64, 64, 3), np.float32))  # type: ignore[arg-type]


def test_utkface_one_face_each(detector: RetinaFaceDetector) -> None:
    """Aligned 200 px crops, one face each: measured 150/151 with exactly one face."""
    paths = _sample("utkface-dev", 60)
    counts = [len(detector.detect(_load(p))) for p in paths]
    assert sum(c == 1 for c in counts) >= 0.95 * len(paths), counts


def test_nuaa_main_face_found(detector: RetinaFaceDetector) -> None:
    """Webcam frames: the subject is always found and is the largest face (background people exist)."""
    paths = _sample("nuaa-dev", 40)
    for path in paths:
        faces = detector.detect(_load(path))
        assert faces, path.name
        main = max(faces, key=lambda f: f.area)
        assert main.score > 0.9, path.name
        assert main.interocular > 25, path.name


def test_nms_keeps_best_of_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
