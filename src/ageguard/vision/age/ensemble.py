"""The age ensemble: HSE faceres-deep and face-api AgeGenderNet, each on the crop that suits it, and an
honest 1-sigma ``st_dev``.

The numbers that shape the result (crop margins, weights, bias correction, the st_dev model) live in
``calibration.json`` beside this file, written by ``python -m ageguard.eval.calibrate_age`` from measured
network outputs; ``docs/quality.md`` says how they were fitted and what they achieve.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from ageguard.errors import AgeGuardError
from ageguard.settings import Settings
from ageguard.vision.age.base import AgeModel
from ageguard.vision.crop import face_crop
from ageguard.vision.faces import face_quality
from ageguard.vision.spare import INLINE, SparePool
from ageguard.vision.types import AgeEstimate, Face, RGBImage

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
MIN_AGE, MAX_AGE = 1.0, 100.0


@dataclass(frozen=True, slots=True)
class AgeCalibration:
    faceres_scale: float
    faceapi_scale: float
    flip: bool
    faceres_weight: float
    # Corrected age = bias + slope * blended age (fitted; removes the regression to the mean).
    bias: float
    slope: float
    # Expected |error| = base + a_std * faceres std + a_gap * |faceres - faceapi| + a_age * age,
    # then st_dev = expected |error| * sigma_scale (set so that |error| <= st_dev for ~68% of faces).
    base: float
    a_std: float
    a_gap: float
    a_age: float
    sigma_scale: float
    # Quality penalties multiply st_dev: poor captures are less certain even where the data to fit
    # them is scarce; each is a documented prior, see docs/quality.md.
    blur_ref: float
    blur_gain: float
    dark_ref: float
    dark_gain: float
    yaw_free: float
    yaw_gain: float
    min_st_dev: float

    @classmethod
    def load(cls, path: Path = CALIBRATION_PATH) -> AgeCalibration:
        return cls(**json.loads(path.read_text()))

    def quality_factor(self, quality: dict[str, float]) -> float:
        blur = max(0.0, math.log(self.blur_ref / max(quality["sharpness"], 1e-3)))
        dark = max(0.0, (self.dark_ref - quality["brightness"]) / self.dark_ref)
        yaw = max(0.0, abs(quality["yaw"]) - self.yaw_free)
        return 1.0 + self.blur_gain * blur + self.dark_gain * dark + self.yaw_gain * yaw

    def combine(
        self, faceres_mean: float, faceres_std: float, faceapi_age: float, quality_factor: float
    ) -> AgeEstimate:
        blended = self.faceres_weight * faceres_mean + (1.0 - self.faceres_weight) * faceapi_age
        age = min(max(self.bias + self.slope * blended, MIN_AGE), MAX_AGE)
        expected = self.base + self.a_std * faceres_std + self.a_gap * abs(faceres_mean - faceapi_age)
        expected += self.a_age * age
        st_dev = max(expected * self.sigma_scale * quality_factor, self.min_st_dev)
        return AgeEstimate(age=float(age), st_dev=float(st_dev))


class AgeEnsemble:
    def __init__(self, faceres: Any, faceapi: AgeModel, calibration: AgeCalibration) -> None:
        self.faceres = faceres
        self.faceapi = faceapi
        self.calibration = calibration

    @classmethod
    def load(cls, settings: Settings) -> AgeEnsemble:
        from ageguard.vision.age.faceapi import FaceApiAgeModel
        from ageguard.vision.age.faceres import FaceResAge

        faceres = FaceResAge.from_store(settings.network_precision)
        return cls(faceres, FaceApiAgeModel(), AgeCalibration.load())

    def network_inputs(self) -> dict[str, tuple[int, ...]]:
        """Input shape of each network (by store asset) per request; the mirrored copy doubles the batch."""
        batch = 2 if self.calibration.flip else 1
        models = (self.faceres, self.faceapi)
        return {model.asset: (batch, model.input_size, model.input_size, 3) for model in models}

    def estimate(
        self,
        image: RGBImage,
        face: Face,
        timings_ms: dict[str, float] | None = None,
        *,
        pil: Image.Image | None = None,
        pool: SparePool = INLINE,
    ) -> AgeEstimate:
        """``pil`` (the same pixels as a Pillow image) and ``pool`` (spare threads) change only how fast:
        face-api's crops and the quality measures are made on a helper while faceres-deep runs."""
        cal = self.calibration
        timings = timings_ms if timings_ms is not None else {}
        api_inputs = pool.submit(self._faceapi_inputs, image, face, pil)
        res_crops = self.faceres_crops(image, face, pil)
        start = time.perf_counter()
        probs = self.faceres.predict_distribution(res_crops)
        timings[f"net:{self.faceres.asset}"] = (time.perf_counter() - start) * 1000.0
        api_crops, quality = api_inputs.result()
        start = time.perf_counter()
        api_age = float(np.mean(self.faceapi.predict(api_crops).mean))
        timings[f"net:{self.faceapi.asset}"] = (time.perf_counter() - start) * 1000.0
        mean, std = distribution_mean_std(probs.mean(axis=0))
        if not (math.isfinite(mean) and math.isfinite(std) and math.isfinite(api_age)):
            raise AgeGuardError("FAIL_PREDICTION", "Age distribution is empty.")
        return cal.combine(mean, std, api_age, cal.quality_factor(quality))

    def faceres_crops(
        self, image: RGBImage, face: Face, pil: Image.Image | None = None
    ) -> npt.NDArray[np.uint8]:
        """What faceres-deep is given for one face (also what its int8 ranges are measured on)."""
        return self._crops(image, face, self.calibration.faceres_scale, self.faceres.input_size, pil)

    def _faceapi_inputs(
        self, image: RGBImage, face: Face, pil: Image.Image | None
    ) -> tuple[npt.NDArray[np.uint8], dict[str, float]]:
        crops = self._crops(image, face, self.calibration.faceapi_scale, self.faceapi.input_size, pil)
        return crops, face_quality(face, image)

    def _crops(
        self, image: RGBImage, face: Face, scale: float, size: int, pil: Image.Image | None
    ) -> npt.NDArray[np.uint8]:
        crop = face_crop(image, face, scale=scale, size=size, pil=pil)
        if self.calibration.flip:
            return np.stack([crop, crop[:, ::-1]])
        return crop[None]


def distribution_mean_std(probs: npt.NDArray[np.floating[Any]]) -> tuple[float, float]:
    """Mean and standard deviation of an age distribution over ages 1..len(probs)."""
    ages = np.arange(1, probs.shape[-1] + 1, dtype=np.float64)
    p = probs.astype(np.float64) / max(float(probs.sum()), 1e-12)
    mean = float((p * ages).sum())
    return mean, float(math.sqrt(max(float((p * (ages - mean) ** 2).sum()), 0.0)))
