"""Raw network outputs over a labelled folder, for choosing crops and fitting the age calibration.

``python -m ageguard.eval.age_features --images DIR --labels CSV --out FEATURES.npz`` stores numbers only
(labels, per-margin network outputs, quality measures): never pixels.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ageguard.errors import AgeGuardError

SCALES = (2.0, 2.36, 2.8, 3.3)
QUALITY_KEYS = ("sharpness", "brightness", "contrast", "yaw", "pitch", "roll", "interocular", "face_height")

_state: dict[str, Any] = {}


def _init() -> None:
    from ageguard.settings import get_settings
    from ageguard.vision.age.faceapi import FaceApiAgeModel
    from ageguard.vision.age.faceres import FaceResAge
    from ageguard.vision.detection.retinaface import RetinaFaceDetector

    _state.update(
        settings=get_settings(),
        detector=RetinaFaceDetector(),
        faceres=FaceResAge.from_store(),
        faceapi=FaceApiAgeModel(),
    )


def features(path: Path, scales: tuple[float, ...] = SCALES) -> dict[str, Any] | None:
    from ageguard.vision.crop import face_crop
    from ageguard.vision.faces import face_quality, select_face
    from ageguard.vision.image import decode

    settings = _state["settings"]
    limits = settings.limits("low")
    try:
        image = decode(path.read_bytes(), limits, settings).rgb
        face = select_face(_state["detector"].detect(image), image, limits, settings)
    except AgeGuardError:
        return None
    res_crops = np.stack([face_crop(image, face, scale=m, size=224) for m in scales])
    api_crops = np.stack([face_crop(image, face, scale=m, size=112) for m in scales])
    res_all = np.concatenate([res_crops, res_crops[:, :, ::-1]])
    api_all = np.concatenate([api_crops, api_crops[:, :, ::-1]])
    probs = _state["faceres"].predict_distribution(res_all)
    api = _state["faceapi"].predict(api_all).mean
    quality = face_quality(face, image)
    return {
        "probs": probs.astype(np.float32).reshape(2, len(scales), -1),
        "faceapi": np.asarray(api, np.float32).reshape(2, len(scales)),
        "quality": np.array([quality[k] for k in QUALITY_KEYS], np.float32),
    }


def collect(images: Path, labels: Path, out: Path, scales: tuple[float, ...] = SCALES) -> None:
    from ageguard.eval.age import read_labels

    truth = read_labels(labels)
    names = sorted(truth)
    with ProcessPoolExecutor(os.cpu_count() or 1, initializer=_init) as pool:
        rows = list(pool.map(partial(features, scales=scales), [images / n for n in names], chunksize=16))
    kept = [(n, r) for n, r in zip(names, rows, strict=True) if r is not None]
    np.savez_compressed(
        out,
        files=np.array([n for n, _ in kept]),
        age=np.array([truth[n].age for n, _ in kept], np.float32),
        gender=np.array([truth[n].gender for n, _ in kept]),
        race=np.array([truth[n].race for n, _ in kept]),
        probs=np.stack([r["probs"] for _, r in kept]),
        faceapi=np.stack([r["faceapi"] for _, r in kept]),
        quality=np.stack([r["quality"] for _, r in kept]),
        scales=np.array(scales, np.float32),
        quality_keys=np.array(QUALITY_KEYS),
    )
    print(f"{len(kept)} of {len(names)} faces kept; features written to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    args = parser.parse_args()
    collect(args.images, args.labels, args.out, tuple(args.scales))
