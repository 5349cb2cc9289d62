"""Face detectors: image in, :class:`ageguard.vision.types.Face` list out."""

from ageguard.vision.detection.base import FaceDetector
from ageguard.vision.detection.retinaface import RetinaFaceDetector

__all__ = ["FaceDetector", "RetinaFaceDetector"]
