"""Plain data that flows through the vision pipeline (no HTTP, no storage)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

RGBImage = npt.NDArray[np.uint8]  # H x W x 3, RGB, uint8
ValidationLevel = Literal["normal", "low"]
AssuranceLevel = Literal["low", "medium", "high"]
Prediction = Literal["real", "fake", "undetermined"]


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face in image pixel coordinates."""

    box: tuple[float, float, float, float]  # left, top, right, bottom
    landmarks: npt.NDArray[np.float32]  # 5 x 2: right eye, left eye, nose, mouth right, mouth left (x, y)
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def interocular(self) -> float:
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))


@dataclass(frozen=True, slots=True)
class AgeEstimate:
    age: float
    st_dev: float


@dataclass(frozen=True, slots=True)
class LivenessVerdict:
    prediction: Prediction
    score: float  # probability that the face is a live person, 0..1
