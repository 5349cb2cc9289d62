"""face-api's AgeGenderNet (TinyXception) on ONNX Runtime.

The converted graph (``ageguard.models.convert.faceapi``) takes 112 x 112 RGB in 0..255 and does
face-api's own normalisation, ``(x - [122.782, 117.001, 104.298]) / 255``, inside; so crops go
in as they are. The network regresses age directly and gives no spread, so ``std`` is None.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ageguard.models import store
from ageguard.vision.age.base import AgeModel, AgeOutput

MODEL_NAME = "faceapi_agegender"


class FaceApiAgeModel(AgeModel):
    name = "faceapi"
    asset = MODEL_NAME
    input_size = 112

    def __init__(self) -> None:
        self._session = store.session(MODEL_NAME)

    def predict(self, crops: npt.NDArray[np.uint8]) -> AgeOutput:
        return AgeOutput(mean=self.predict_with_gender(crops)[0], std=None)

    def predict_with_gender(
        self, crops: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Age (N,) and P(male) (N,), as face-api reports them."""
        self._check(crops)
        if crops.shape[0] == 0:
            empty = np.zeros((0,), np.float32)
            return empty, empty
        age, gender = self._session.run(["age", "gender"], {"input": crops.astype(np.float32)})
        return age.astype(np.float32), gender[:, 0].astype(np.float32)


def resize_like_faceapi(crop: npt.NDArray[np.uint8], size: int = 112) -> npt.NDArray[np.uint8]:
    """Resize an H x W x 3 crop to ``size`` as face-api does for a tensor input.

    face-api calls ``tf.image.resizeBilinear(x, [size, size], alignCorners=false,
    halfPixelCenters=false)``: source coordinate ``i * in / out`` with no half-pixel shift. PIL and
    OpenCV bilinear use half-pixel centres instead, and the network is sensitive to the
    difference: on the astronaut reference crop (88 px) face-api itself says 36.08 years (float
    resize), this function 36.19 (rounded to uint8 for the crop interface), PIL's resize 35.62.
    """
    h, w = crop.shape[:2]
    src = crop.astype(np.float32)
    ys = np.arange(size, dtype=np.float32) * (h / size)
    xs = np.arange(size, dtype=np.float32) * (w / size)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    dy = (ys - y0)[:, None, None]
    dx = (xs - x0)[None, :, None]
    top = src[y0][:, x0] * (1 - dx) + src[y0][:, x1] * dx
    bottom = src[y1][:, x0] * (1 - dx) + src[y1][:, x1] * dx
    return np.clip(np.rint(top * (1 - dy) + bottom * dy), 0, 255).astype(np.uint8)
