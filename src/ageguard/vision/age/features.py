"""What the age head sees of a face: the frozen networks' outputs on the face's two crops.

One function, used by the served estimate and by ``ageguard train age`` alike, so the head is trained on
exactly the numbers it is later given: faceres-deep's pooled descriptor and age distribution (224 px
crop), face-api's regressed age (112 px crop), each averaged over the crop and its mirror image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from ageguard.vision.age.faceapi import FaceApiAgeModel
from ageguard.vision.age.faceres import FaceResAge
from ageguard.vision.crop import face_crop
from ageguard.vision.spare import INLINE, SparePool
from ageguard.vision.types import Face, RGBImage

DESCRIPTOR_DIM = 1024
AGE_CLASSES = 100
# descriptor, faceres age distribution, face-api age / 100
FEATURE_DIM = DESCRIPTOR_DIM + AGE_CLASSES + 1
FACERES_SCALE = 4.4  # face crop margins measured best for each network (docs/quality.md)
FACEAPI_SCALE = 2.8


@dataclass(frozen=True, slots=True)
class NetworkFeatures:
    vector: npt.NDArray[np.float32]  # FEATURE_DIM
    faceres_probs: npt.NDArray[np.float32]  # AGE_CLASSES, ages 1..100
    faceapi_age: float


def _with_mirror(crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.stack([crop, crop[:, ::-1]])


def network_features(
    faceres: FaceResAge,
    faceapi: FaceApiAgeModel,
    image: RGBImage,
    face: Face,
    timings_ms: dict[str, float] | None = None,
    *,
    pil: Image.Image | None = None,
    pool: SparePool = INLINE,
) -> NetworkFeatures:
    """``pil`` (the same pixels as a Pillow image) and ``pool`` (spare threads) change only how fast."""
    timings = timings_ms if timings_ms is not None else {}

    def crops(scale: float, size: int) -> npt.NDArray[np.uint8]:
        return _with_mirror(face_crop(image, face, scale=scale, size=size, pil=pil))

    api_job = pool.submit(crops, FACEAPI_SCALE, faceapi.input_size)
    res_crops = crops(FACERES_SCALE, faceres.input_size)
    start = time.perf_counter()
    res = faceres.run(res_crops)
    timings[f"net:{faceres.asset}"] = (time.perf_counter() - start) * 1000.0
    api_crops = api_job.result()
    start = time.perf_counter()
    api_age = float(np.mean(faceapi.predict(api_crops).mean))
    timings[f"net:{faceapi.asset}"] = (time.perf_counter() - start) * 1000.0
    descriptor = res.descriptor.mean(axis=0)
    probs = res.age_probs.mean(axis=0)
    vector = np.concatenate([descriptor, probs, np.array([api_age / 100.0], np.float32)]).astype(np.float32)
    return NetworkFeatures(vector=vector, faceres_probs=probs.astype(np.float32), faceapi_age=api_age)
