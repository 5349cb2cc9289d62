"""The age estimate from AgeGuard's own trained head (``age_head.onnx``) on the frozen networks' features.

``age_head.onnx`` and ``age_head.json`` are written together by ``ageguard train age --out DIR`` and served
when ``AGEGUARD_AGE_HEAD_DIR`` names DIR: the JSON holds the ONNX file's SHA-256 and the fitted st_dev line,
so the numbers of an estimate have one home, produced by the training that made the head. It is not the
default: on the unseen teen faces it measured worse than the shipped ensemble (``docs/models/age.md``).

The head predicts a distribution over ages 1..100; the age is its mean. st_dev is the distribution's spread
mapped to an expected error by the fitted line (``a + b * spread + c * age``, scaled so about 68% of held-out
errors fall within it), then widened for blur, darkness and head turn: poor captures are less certain even
where the data to fit that is scarce (documented priors, see docs/quality.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from ageguard.errors import AgeGuardError
from ageguard.vision.age.faceapi import FaceApiAgeModel
from ageguard.vision.age.faceres import FaceResAge
from ageguard.vision.age.features import FEATURE_DIM, network_features
from ageguard.vision.faces import face_quality
from ageguard.vision.spare import INLINE, SparePool
from ageguard.vision.types import AgeEstimate, Face, RGBImage

HEAD_FILE = "age_head.json"
MIN_AGE, MAX_AGE = 1.0, 100.0


@dataclass(frozen=True, slots=True)
class QualityPriors:
    """st_dev x (1 + blur + dark + yaw terms); each term is 0 for a good capture."""

    blur_ref: float = 45.5  # sharpness (faces.face_quality) of a typical sharp dev-set face
    blur_gain: float = 0.5  # +50% per e-fold of blur below blur_ref
    dark_ref: float = 70.0  # brightness below which st_dev grows...
    dark_gain: float = 1.0  # ...up to double at 0
    yaw_free: float = 0.15  # frontal tolerance of the yaw measure
    yaw_gain: float = 1.5  # +150% per unit of yaw beyond it

    def factor(self, quality: dict[str, float]) -> float:
        blur = max(0.0, math.log(self.blur_ref / max(quality["sharpness"], 1e-3)))
        dark = max(0.0, (self.dark_ref - quality["brightness"]) / self.dark_ref)
        yaw = max(0.0, abs(quality["yaw"]) - self.yaw_free)
        return 1.0 + self.blur_gain * blur + self.dark_gain * dark + self.yaw_gain * yaw


@dataclass(frozen=True, slots=True)
class StDevLine:
    a: float
    b: float
    c: float
    k: float
    min_st_dev: float

    def st_dev(self, age: float, spread: float, quality_factor: float) -> float:
        expected = max(self.a + self.b * spread + self.c * age, 0.1)
        return max(expected * self.k * quality_factor, self.min_st_dev)


def distribution_mean_std(probs: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of an age distribution over ages 1..len(probs)."""
    ages = np.arange(1, probs.shape[-1] + 1, dtype=np.float64)
    p = probs.astype(np.float64) / max(float(probs.sum()), 1e-12)
    mean = float((p * ages).sum())
    return mean, float(math.sqrt(max(float((p * (ages - mean) ** 2).sum()), 0.0)))


def load_head_metadata(head_dir: Path) -> dict[str, Any]:
    path = head_dir / HEAD_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AgeGuardError("SERVICE_UNAVAILABLE", f"age model metadata unreadable: {path.name}") from exc
    return data


class AgeHead:
    """The trained head's ONNX session, checked against the SHA-256 its training wrote; thread-safe."""

    def __init__(self, head_dir: Path) -> None:
        meta = load_head_metadata(head_dir)
        if int(meta.get("feature_dim", -1)) != FEATURE_DIM:
            raise AgeGuardError("SERVICE_UNAVAILABLE", "age model expects other features than these networks")
        path = head_dir / str(meta["model"])
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise AgeGuardError("SERVICE_UNAVAILABLE", f"age model missing: {path.name}") from exc
        if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
            raise AgeGuardError("SERVICE_UNAVAILABLE", f"age model does not match its SHA-256: {path.name}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a few thousand multiply-adds: threads would cost more
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        self.metadata = meta
        self.line = StDevLine(**meta["st_dev"])

    def probs(self, features: np.ndarray) -> np.ndarray:
        (out,) = self._session.run(
            ["probs"], {"features": features.astype(np.float32).reshape(-1, FEATURE_DIM)}
        )
        return np.asarray(out, np.float64)


class AgeEstimator:
    def __init__(
        self,
        faceres: FaceResAge,
        faceapi: FaceApiAgeModel,
        head: AgeHead,
        priors: QualityPriors | None = None,
    ) -> None:
        self.faceres = faceres
        self.faceapi = faceapi
        self.head = head
        self.priors = priors or QualityPriors()

    @classmethod
    def with_head(cls, head: AgeHead) -> AgeEstimator:
        """The store's verified networks with a trained head (``settings.age_head_dir``)."""
        return cls(FaceResAge.from_store(), FaceApiAgeModel(), head)

    def network_inputs(self) -> dict[str, tuple[int, ...]]:
        """Input shape of each network (by store asset) per request; the mirrored copy doubles the batch."""
        return {
            model.asset: (2, model.input_size, model.input_size, 3) for model in (self.faceres, self.faceapi)
        }

    def estimate(
        self,
        image: RGBImage,
        face: Face,
        timings_ms: dict[str, float] | None = None,
        *,
        pil: Image.Image | None = None,
        pool: SparePool = INLINE,
    ) -> AgeEstimate:
        timings = timings_ms if timings_ms is not None else {}
        features = network_features(self.faceres, self.faceapi, image, face, timings, pil=pil, pool=pool)
        start = time.perf_counter()
        probs = self.head.probs(features.vector)[0]
        timings["net:age_head"] = (time.perf_counter() - start) * 1000.0
        mean, spread = distribution_mean_std(probs)
        if not (math.isfinite(mean) and math.isfinite(spread)):
            raise AgeGuardError("FAIL_PREDICTION", "Age distribution is empty.")
        age = min(max(mean, MIN_AGE), MAX_AGE)
        factor = self.priors.factor(face_quality(face, image))
        return AgeEstimate(age=float(age), st_dev=float(self.head.line.st_dev(age, spread, factor)))
