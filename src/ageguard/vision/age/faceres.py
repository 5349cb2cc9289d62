"""HSE faceres-deep age estimator (MobileNet, 224 x 224), run from its converted ONNX model.

The network (A. V. Savchenko, HSE_FaceRec_tf) classifies age into 100 classes, ages 1..100. It was
trained on Caffe/Keras-style inputs: BGR channel order, the ImageNet channel means subtracted, no
scaling. The estimate is the mean of the predicted distribution and its spread the distribution's
standard deviation. The full distribution and the pooled descriptor are exposed too, for the age head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ageguard.settings import Precision
from ageguard.vision.age.base import AgeModel, AgeOutput

if TYPE_CHECKING:
    import onnxruntime as ort

ASSET = "faceres_deep"
INPUT_SIZE = 224
# Per-channel means in B, G, R order (Caffe ImageNet), subtracted from the BGR pixels.
MEANS_BGR = np.array([103.939, 116.779, 123.68], np.float32)
AGES = np.arange(1, 101, dtype=np.float64)  # class i is age i + 1


@dataclass(frozen=True, slots=True)
class FaceResOutput:
    """Everything the network says about N crops."""

    age_probs: npt.NDArray[np.float32]  # N x 100, rows sum to 1, ages 1..100
    gender: npt.NDArray[np.float32]  # N, sigmoid; above 0.5 means male
    descriptor: npt.NDArray[np.float32]  # N x 1024 pooled features


def preprocess(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """N x S x S x 3 RGB uint8 -> N x S x S x 3 float32 BGR minus the channel means."""
    return crops[..., ::-1].astype(np.float32) - MEANS_BGR


def distribution_stats(
    probs: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Mean and standard deviation of age distributions over ages 1..100 (rows of ``probs``)."""
    p = np.asarray(probs, np.float64)
    p = p / p.sum(axis=-1, keepdims=True)
    mean = p @ AGES
    var = p @ (AGES**2) - mean**2
    return mean.astype(np.float32), np.sqrt(np.maximum(var, 0.0)).astype(np.float32)


class FaceResAge(AgeModel):
    """Age from HSE faceres-deep; thread-safe (onnxruntime sessions may be run concurrently)."""

    name = "faceres"
    input_size = INPUT_SIZE

    def __init__(self, session: ort.InferenceSession | None = None, asset: str = ASSET) -> None:
        """Run ``session`` (the converted model), or by default the store's verified ``asset``."""
        if session is None:
            from ageguard.models import store

            session = store.session(asset)
        self.asset = asset
        inputs = session.get_inputs()
        outputs = {o.name for o in session.get_outputs()}
        if len(inputs) != 1 or not {"age_probs", "gender"} <= outputs:
            raise ValueError("not a faceres-deep session: expected one input and age_probs/gender outputs")
        self._session = session
        self._input = inputs[0].name
        self._outputs = [n for n in ("age_probs", "gender", "descriptor") if n in outputs]

    @classmethod
    def from_store(cls, precision: Precision = "float32") -> FaceResAge:
        """The model from the verified model store (installed on first use), float32 or its int8 variant."""
        from ageguard.models.registry import asset_for

        return cls(asset=asset_for(ASSET, precision))

    def run(self, crops: npt.NDArray[np.uint8]) -> FaceResOutput:
        """Age distribution, gender and descriptor for N face crops (N x 224 x 224 x 3 RGB uint8)."""
        self._check(crops)
        if crops.shape[0] == 0:
            empty = np.zeros((0, 100), np.float32)
            return FaceResOutput(empty, np.zeros(0, np.float32), np.zeros((0, 1024), np.float32))
        values = dict(zip(self._outputs, self._session.run(self._outputs, {self._input: preprocess(crops)}),
                          strict=True))  # fmt: skip
        n = crops.shape[0]
        descriptor = values.get("descriptor", np.zeros((n, 0), np.float32))
        return FaceResOutput(
            age_probs=np.asarray(values["age_probs"], np.float32),
            gender=np.asarray(values["gender"], np.float32).reshape(n),
            descriptor=np.asarray(descriptor, np.float32),
        )

    def predict_distribution(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """N x 100 age probabilities; column i is age i + 1."""
        self._check(crops)
        if crops.shape[0] == 0:
            return np.zeros((0, 100), np.float32)
        (probs,) = self._session.run(["age_probs"], {self._input: preprocess(crops)})
        return np.asarray(probs, np.float32)

    def predict(self, crops: npt.NDArray[np.uint8]) -> AgeOutput:
        mean, std = distribution_stats(self.predict_distribution(crops))
        return AgeOutput(mean=mean, std=std)
