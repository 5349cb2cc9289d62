"""The detector interface the pipeline depends on."""

from __future__ import annotations

from abc import ABC, abstractmethod

from PIL import Image

from ageguard.vision.types import Face, RGBImage


class FaceDetector(ABC):
    """Finds faces in an RGB image.

    Contract for implementations:

    - ``image`` is H x W x 3 ``uint8`` RGB; any size from 32 to 4000 px per side.
    - Boxes are ``(left, top, right, bottom)`` floats in the input image's pixel coordinates.
      They are *not* clipped to the image, so a face cut off by the frame edge stays visible as
      such to the margin rules.
    - ``landmarks`` is 5 x 2 (x, y), in this order: the subject's right eye, the subject's left
      eye, nose tip, the subject's right mouth corner, the subject's left mouth corner. For a
      frontal, upright face the subject's right eye is the one on the image's *left*
      (smaller x); this is the order of the usual 5-point alignment template (ArcFace/InsightFace).
    - Faces are sorted by score, highest first; an image without a face gives ``[]``.
    - Implementations are thread-safe once constructed.
    """

    name: str

    @abstractmethod
    def detect(
        self,
        image: RGBImage,
        timings_ms: dict[str, float] | None = None,
        *,
        pil: Image.Image | None = None,
    ) -> list[Face]:
        """Faces in ``image``; adds the network-only time to ``timings_ms["net:<name>"]`` when given.

        ``pil``: the same pixels as a Pillow image, if the caller has one (saves a conversion).
        """
