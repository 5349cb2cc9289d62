"""Passive liveness (anti-spoofing) from one RGB image: ``real``, ``fake`` or ``undetermined``.

``LivenessModel`` (base.py) is the interface and the shared decision; ``OnnxLivenessModel`` (model.py)
is AgeGuard's own trained model, shipped as ``antispoof.onnx`` + ``antispoof.json`` in this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ageguard.vision.liveness.base import DecisionPolicy, LivenessModel, QualityGate, Scored
from ageguard.vision.liveness.model import MODEL_DIR, OnnxLivenessModel

if TYPE_CHECKING:
    from ageguard.settings import Settings

__all__ = [
    "DecisionPolicy",
    "LivenessModel",
    "OnnxLivenessModel",
    "QualityGate",
    "Scored",
    "load_liveness_model",
]


def load_liveness_model(settings: Settings | None = None) -> LivenessModel:
    """The shipped liveness model, or the one in ``settings.liveness_model_dir``; raises
    ``AgeGuardError(SERVICE_UNAVAILABLE)`` if its files are unusable."""
    if settings is None:
        return OnnxLivenessModel()
    return OnnxLivenessModel(settings.liveness_model_dir or MODEL_DIR, threads=settings.onnx_threads or 1)
