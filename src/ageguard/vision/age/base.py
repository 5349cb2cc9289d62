"""The interface every age network implements; the estimator feeds their outputs to the age head."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class AgeOutput:
    """Per-crop age in years; ``std`` is the network's own spread where it has one (else None)."""

    mean: npt.NDArray[np.float32]  # (N,)
    std: npt.NDArray[np.float32] | None = None  # (N,)


class AgeModel(ABC):
    """An age regressor over square RGB face crops.

    ``predict`` takes ``crops`` of shape N x S x S x 3, ``uint8`` RGB, with ``S == input_size``;
    how the crop is cut and resized is the caller's job (it changes the answer, so one place
    does it for every model). Implementations are thread-safe once constructed.
    """

    name: str
    asset: str  # the model store's asset name (ageguard.models.registry)
    input_size: int

    @abstractmethod
    def predict(self, crops: npt.NDArray[np.uint8]) -> AgeOutput: ...

    def _check(self, crops: npt.NDArray[np.uint8]) -> None:
        s = self.input_size
        if crops.ndim != 4 or crops.shape[1:] != (s, s, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: expected N x {s} x {s} x 3 uint8, got {crops.shape} {crops.dtype}"
            )
