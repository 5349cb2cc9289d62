"""The age head's inputs over a labelled folder, cached as numbers (never pixels).

Each image goes through the served path: decode, detection, the one-face rule at the ``low`` level, the two
crops and the frozen networks (:func:`ageguard.vision.age.features.network_features`). The result is one
``.npz`` per folder, keyed by the folder's labels file, so a second training run reuses it.
"""

from __future__ import annotations

import csv
import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ageguard.errors import AgeGuardError

QUALITY_KEYS = ("sharpness", "brightness", "yaw")
_state: dict[str, Any] = {}


class AgeLabelsError(ValueError):
    """A labels file that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LabelledImage:
    file: str
    age: float
    gender: int  # 0 male, 1 female, -1 unknown
    race: int  # UTKFace codes, -1 unknown
    source: str
    identity: str  # person id where the source has one, else ""


def read_labels(labels: Path, default_source: str) -> list[LabelledImage]:
    """Rows of a ``file,age[,gender,race,source,identity]`` CSV (utkface-dev's or the age pool's columns)."""
    rows: list[LabelledImage] = []
    try:
        with labels.open(newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    rows.append(
                        LabelledImage(
                            file=row["file"],
                            age=float(row["age"]),
                            gender=_int_or(row.get("gender"), -1),
                            race=_int_or(row.get("race"), -1),
                            source=row.get("source") or default_source,
                            identity=row.get("identity") or "",
                        )
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise AgeLabelsError(f"{labels}:{line}: needs file and a numeric age ({exc})") from exc
    except OSError as exc:
        raise AgeLabelsError(f"{labels}: {exc.strerror}") from exc
    if not rows:
        raise AgeLabelsError(f"{labels}: no rows")
    return rows


def _int_or(value: str | None, default: int) -> int:
    return int(value) if value not in (None, "") else default


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


def _one(path: Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    from ageguard.vision.age.features import network_features
    from ageguard.vision.faces import face_quality, select_face
    from ageguard.vision.image import decode

    settings = _state["settings"]
    limits = settings.limits("low")
    try:
        image = decode(path.read_bytes(), limits, settings).rgb
        face = select_face(_state["detector"].detect(image), image, limits, settings)
    except (AgeGuardError, OSError):
        return None
    feats = network_features(_state["faceres"], _state["faceapi"], image, face)
    quality = face_quality(face, image)
    return feats.vector, np.array([quality[k] for k in QUALITY_KEYS], np.float32)


def cache_key(rows: list[LabelledImage]) -> str:
    """Names the cache file by the rows it holds (not the CSV's bytes) and the crops the networks saw."""
    from ageguard.vision.age.features import FACEAPI_SCALE, FACERES_SCALE

    digest = hashlib.sha256(f"{FACERES_SCALE},{FACEAPI_SCALE},v1".encode())
    for r in rows:
        digest.update(f"\n{r.file},{r.age:g},{r.gender},{r.race},{r.source},{r.identity}".encode())
    return digest.hexdigest()[:16]


def collect(images: Path, labels: Path, cache_dir: Path, source: str, workers: int | None = None) -> Path:
    """The cached feature file of one labelled folder, computed on every core the first time."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    rows = read_labels(labels, source)
    out = cache_dir / f"{source}-{cache_key(rows)}.npz"
    if out.exists():
        return out
    paths = [images / r.file for r in rows]
    with ProcessPoolExecutor(workers or os.cpu_count() or 1, initializer=_init) as pool:
        results = list(pool.map(_one, paths, chunksize=32))
    kept = [(r, res) for r, res in zip(rows, results, strict=True) if res is not None]
    tmp = out.with_suffix(".part.npz")
    np.savez_compressed(
        tmp,
        name=np.array([r.file for r, _ in kept]),
        age=np.array([r.age for r, _ in kept], np.float32),
        gender=np.array([r.gender for r, _ in kept], np.int8),
        race=np.array([r.race for r, _ in kept], np.int8),
        source=np.array([r.source for r, _ in kept]),
        identity=np.array([r.identity for r, _ in kept]),
        x=np.stack([res[0] for _, res in kept]).astype(np.float32),
        quality=np.stack([res[1] for _, res in kept]),
        quality_keys=np.array(QUALITY_KEYS),
    )
    tmp.replace(out)
    print(f"{source}: {len(kept)} of {len(rows)} faces kept -> {out}")
    return out
