"""Age networks behind one interface (:class:`AgeModel`)."""

from ageguard.vision.age.base import AgeModel, AgeOutput
from ageguard.vision.age.faceapi import FaceApiAgeModel

__all__ = ["AgeModel", "AgeOutput", "FaceApiAgeModel"]
