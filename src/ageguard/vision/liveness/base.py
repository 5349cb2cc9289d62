"""Passive liveness: the interface every model implements and the decision shared by all of them.

A model turns one face into a score, the probability that a live person is in front of the camera.
The decision then maps the score to ``real``, ``fake`` or ``undetermined`` for the requested
level_of_assurance: each level has a threshold with an uncertainty band around it (scores inside the
band are ``undetermined``), and a face too small, too blurred or too dark to judge is ``undetermined``
whatever its score. The numbers come from the evaluation that trained the model and live in one JSON
file next to the model (see :mod:`ageguard.vision.liveness.model`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from ageguard.vision.types import AssuranceLevel, Face, LivenessVerdict, Prediction, RGBImage

LEVELS: tuple[AssuranceLevel, ...] = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class LevelThresholds:
    """``real`` at or above ``upper``, ``fake`` below ``lower``, ``undetermined`` between."""

    threshold: float
    lower: float
    upper: float

    def decide(self, score: float) -> Prediction:
        if score >= self.upper:
            return "real"
        if score < self.lower:
            return "fake"
        return "undetermined"


@dataclass(frozen=True, slots=True)
class QualityGate:
    """Below these, the face is too poor to judge and the verdict is ``undetermined``."""

    min_face_px: float = 40.0  # shorter side of the face box, image pixels
    min_brightness: float = 30.0  # mean luma of the face crop, 0..255
    max_brightness: float = 240.0
    min_sharpness: float = 5.0  # standard deviation of the Laplacian of the face crop (luma)


@dataclass(frozen=True, slots=True)
class FaceQuality:
    face_px: float
    brightness: float
    sharpness: float

    def problem(self, gate: QualityGate) -> str | None:
        """Why the face cannot be judged, or None."""
        if self.face_px < gate.min_face_px:
            return "face too small"
        if self.brightness < gate.min_brightness:
            return "face too dark"
        if self.brightness > gate.max_brightness:
            return "face too bright"
        if self.sharpness < gate.min_sharpness:
            return "face too blurred"
        return None


@dataclass(frozen=True, slots=True)
class DecisionPolicy:
    levels: dict[AssuranceLevel, LevelThresholds]
    quality: QualityGate

    def decide(
        self, score: float, assurance: AssuranceLevel, quality: FaceQuality | None = None
    ) -> Prediction:
        if quality is not None and quality.problem(self.quality) is not None:
            return "undetermined"
        return self.levels[assurance].decide(score)

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": {level: asdict(self.levels[level]) for level in LEVELS},
            "quality": asdict(self.quality),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DecisionPolicy:
        levels = {level: LevelThresholds(**data["levels"][level]) for level in LEVELS}
        return cls(levels=levels, quality=QualityGate(**data.get("quality", {})))


def face_quality(face_crop: RGBImage, face: Face) -> FaceQuality:
    """Size, brightness and sharpness of a face from its tight crop."""
    luma = _luma(face_crop)
    lap = 4.0 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    return FaceQuality(
        face_px=float(min(face.width, face.height)),
        brightness=float(luma.mean()),
        sharpness=float(lap.std()),
    )


def _luma(rgb: RGBImage) -> npt.NDArray[np.float32]:
    pixels = rgb.astype(np.float32)
    return pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114


@dataclass(frozen=True, slots=True)
class Scored:
    score: float
    quality: FaceQuality


@dataclass(frozen=True, slots=True)
class LivenessInputs:
    """What a model takes from the pixels of one face (its input tensors, the face's quality), made
    before its network runs, so that the pixel work can be done while another network runs."""

    tensors: dict[str, npt.NDArray[np.float32]]
    quality: FaceQuality


class LivenessModel(ABC):
    """A passive (single image) liveness model with its decision policy."""

    policy: DecisionPolicy
    name: str

    @abstractmethod
    def prepare(self, image: RGBImage, face: Face, pil: Image.Image | None = None) -> LivenessInputs:
        """The crops and quality of ``face``; no network runs. ``pil``: the same pixels, if at hand."""

    @abstractmethod
    def score_inputs(self, inputs: LivenessInputs, timings_ms: dict[str, float] | None = None) -> Scored:
        """The network on prepared inputs; adds its time to ``timings_ms["net:<name>"]`` when given."""

    def score(self, image: RGBImage, face: Face) -> Scored:
        """The probability that ``face`` is a live person, with the face's quality."""
        return self.score_inputs(self.prepare(image, face))

    def decide(self, scored: Scored, assurance: AssuranceLevel) -> LivenessVerdict:
        return LivenessVerdict(self.policy.decide(scored.score, assurance, scored.quality), scored.score)

    def verdict(self, image: RGBImage, face: Face, assurance: AssuranceLevel) -> LivenessVerdict:
        return self.decide(self.score(image, face), assurance)
