"""AgeGuard's own passive liveness model (``antispoof.onnx``) and its decision policy (``antispoof.json``).

Both files ship in this package, written together by ``ageguard train antispoof``: the JSON holds the
ONNX file's SHA-256, the input sizes, each level's threshold and uncertainty band and the quality gate,
so the numbers of a decision have one home, produced by the training that made the model. See
``docs/models/antispoof.md`` for the data, the recipe and the measured error rates.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from ageguard.errors import AgeGuardError
from ageguard.vision.liveness.base import (
    DecisionPolicy,
    LivenessInputs,
    LivenessModel,
    Scored,
    face_quality,
)
from ageguard.vision.liveness.crops import CONTEXT_SCALE, FACE_SCALE, liveness_crops, quality_crop
from ageguard.vision.types import Face, RGBImage

MODEL_DIR = Path(__file__).resolve().parent
POLICY_FILE = "antispoof.json"


def load_metadata(model_dir: Path = MODEL_DIR) -> dict[str, Any]:
    path = model_dir / POLICY_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AgeGuardError("SERVICE_UNAVAILABLE", f"liveness model policy unreadable: {path.name}") from exc
    return data


class OnnxLivenessModel(LivenessModel):
    """Frozen backbone features of two crops + a small MLP, one ONNX graph; thread-safe once constructed."""

    name = "ageguard-antispoof"

    def __init__(self, model_dir: Path = MODEL_DIR, *, threads: int = 1, verify: bool = True) -> None:
        meta = load_metadata(model_dir)
        self.metadata = meta
        self.policy = DecisionPolicy.from_json(meta)
        self.context_size = int(meta["inputs"]["context"][-1])
        self.face_size = int(meta["inputs"]["face"][-1])
        scales = meta.get("crops", {})
        self.context_scale = float(scales.get("context_scale", CONTEXT_SCALE))
        self.face_scale = float(scales.get("face_scale", FACE_SCALE))
        path = model_dir / str(meta["model"])
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise AgeGuardError("SERVICE_UNAVAILABLE", f"liveness model missing: {path.name}") from exc
        if verify and hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
            raise AgeGuardError(
                "SERVICE_UNAVAILABLE", f"liveness model does not match its SHA-256: {path.name}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(threads, 0)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])

    def prepare(self, image: RGBImage, face: Face, pil: Image.Image | None = None) -> LivenessInputs:
        """The network's two input tensors (1 x 3 x S x S, float 0..255 RGB) and the face's quality."""
        source = pil if pil is not None else Image.fromarray(image)
        context, face_crop = liveness_crops(
            source, face.box, self.context_size, self.face_size, self.context_scale, self.face_scale
        )
        quality = face_quality(quality_crop(source, face.box), face)
        return LivenessInputs({"context": _tensor(context), "face": _tensor(face_crop)}, quality)

    def score_inputs(self, inputs: LivenessInputs, timings_ms: dict[str, float] | None = None) -> Scored:
        start = time.perf_counter()
        live = self._session.run(["live"], inputs.tensors)[0]
        if timings_ms is not None:
            timings_ms[f"net:{self.name}"] = (time.perf_counter() - start) * 1000.0
        return Scored(float(np.clip(live[0], 0.0, 1.0)), inputs.quality)


def _tensor(crop: RGBImage) -> np.ndarray:
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32)
