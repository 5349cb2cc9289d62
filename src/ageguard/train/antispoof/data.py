"""The labelled images, their face boxes and the crops the network trains on.

Images are read from the shared development sets (never copied): ``fas-dev`` and ``nuaa-dev`` for
real and attack faces, ``utkface-dev`` for extra genuine faces, plus any folders of a deployment's own
labelled captures in fas-dev's layout (``load_labelled``). Each image is decoded once, its face
found with the product's detector (boxes may be cached in a small JSON file: boxes only, no pixels),
and reduced to the two liveness crops at ``CANVAS`` px, held in memory only.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from ageguard.eval.antispoof import FAKE_LABELS, REAL_LABELS
from ageguard.vision.liveness.crops import CONTEXT_SCALE, FACE_SCALE, Box, crop, scaled_box
from ageguard.vision.types import Face, RGBImage

CANVAS = 96  # default stored crop size; training stores them at its crop size and jitters views within

Detect = Callable[[RGBImage], list[Face]]


@dataclass(frozen=True, slots=True)
class Sample:
    path: Path
    real: bool
    attack: str  # "none" for a live person
    source: str  # e.g. "CASIA-FASD", "NUAA", "UTKFace"
    subject: str

    @property
    def key(self) -> str:
        """The image's name in the box cache: ``<set>/<file>``, its path under its set's ``images/``."""
        images = next((p for p in self.path.parents if p.name == "images"), None)
        if images is None:
            return str(self.path)
        return f"{images.parent.name}/{self.path.relative_to(images).as_posix()}"

    @property
    def family(self) -> str:
        """The labelled folder of the image (``fas-dev``, ``nuaa-dev``, an ``--extra`` folder's name)."""
        images = next((p for p in self.path.parents if p.name == "images"), None)
        return images.parent.name if images is not None else self.source


class LabelsError(ValueError):
    """A labelled folder that cannot be read: says which file, row and field."""


def load_labelled(folder: Path) -> list[Sample]:
    """A folder in fas-dev's layout: ``images/`` and ``labels.csv``.

    Columns: ``file`` and ``label`` (``real`` or ``fake``, or a word of ``REAL_LABELS`` / ``FAKE_LABELS``);
    optionally ``attack_type``, ``source`` (default: the folder's name) and ``subject`` (default: the file,
    every image its own subject; give it so that the validation split is subject-disjoint).
    """
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise LabelsError(f"{labels}: not found")
    try:
        with labels.open(newline="", encoding="utf-8") as fh:
            return _labelled_rows(folder, labels, csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelsError(f"{labels}: not a UTF-8 CSV file ({exc})") from exc


def _labelled_rows(folder: Path, labels: Path, reader: csv.DictReader[str]) -> list[Sample]:
    missing = {"file", "label"} - set(reader.fieldnames or ())
    if missing:
        raise LabelsError(f"{labels}: missing column(s) {', '.join(sorted(missing))}")
    samples = []
    for line, row in enumerate(reader, start=2):
        word = (row["label"] or "").strip().lower()
        if not word:
            raise LabelsError(f"{labels} line {line}: no label")
        if word not in REAL_LABELS + FAKE_LABELS:
            raise LabelsError(
                f"{labels} line {line}: label {row['label']!r} is neither real "
                f"({', '.join(REAL_LABELS)}) nor fake ({', '.join(FAKE_LABELS)})"
            )
        path = folder / "images" / (row["file"] or "")
        if not row["file"] or not path.is_file():
            raise LabelsError(f"{labels} line {line}: no image {path}")
        source = row.get("source") or folder.name
        real = word in REAL_LABELS
        attack = row.get("attack_type") or ("none" if real else "attack")
        subject = f"{source}:{row.get('subject') or row['file']}"
        samples.append(Sample(path, real, attack, source, subject))
    return samples


def load_fas(root: Path) -> list[Sample]:
    return load_labelled(root / "fas-dev")


def load_nuaa(root: Path) -> list[Sample]:
    folder = root / "nuaa-dev"
    with (folder / "labels.csv").open(newline="") as fh:
        return [
            Sample(
                folder / "images" / row["file"],
                row["label"] == "real",
                "none" if row["label"] == "real" else "print",
                "NUAA",
                f"NUAA:{row['subject']}",
            )
            for row in csv.DictReader(fh)
        ]


def load_utk(root: Path, count: int, seed: int) -> list[Sample]:
    """``count`` UTKFace crops drawn at random (seeded): extra live faces of every age."""
    folder = root / "utkface-dev"
    if count <= 0 or not folder.exists():
        return []
    with (folder / "labels.csv").open(newline="") as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(files, min(count, len(files))))
    return [Sample(folder / "images" / f, True, "none", "UTKFace", f"UTKFace:{f}") for f in chosen]


def main_face(faces: Sequence[Face]) -> Face | None:
    return max(faces, key=lambda f: f.area) if faces else None


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def find_boxes(samples: Sequence[Sample], detect: Detect, cache: Path | None = None) -> dict[str, Box | None]:
    """The main face box of every sample (None where no face is found), cached by image key."""
    known: dict[str, Box | None] = {}
    if cache is not None and cache.exists():
        known = {k: (tuple(v) if v else None) for k, v in json.loads(cache.read_text()).items()}
    changed = False
    for sample in samples:
        if sample.key in known:
            continue
        face = main_face(detect(np.asarray(load_rgb(sample.path))))
        known[sample.key] = face.box if face else None
        changed = True
    if cache is not None and changed:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    return {s.key: known[s.key] for s in samples}


@dataclass
class CropSet:
    """Crops of the samples that have a face, aligned with ``samples``."""

    samples: list[Sample]
    context: npt.NDArray[np.uint8]  # N x CANVAS x CANVAS x 3
    face: npt.NDArray[np.uint8]  # N x CANVAS x CANVAS x 3
    face_px: npt.NDArray[np.float32]  # shorter side of the face box
    inner: npt.NDArray[np.float32]  # N x 4: the face box inside the context crop, as fractions

    @property
    def labels(self) -> npt.NDArray[np.float32]:
        return np.array([s.real for s in self.samples], dtype=np.float32)

    def subset(self, index: npt.NDArray[np.intp] | list[int]) -> CropSet:
        idx = np.asarray(index, dtype=np.intp)
        return CropSet(
            [self.samples[i] for i in idx],
            self.context[idx],
            self.face[idx],
            self.face_px[idx],
            self.inner[idx],
        )


def crop_sample(
    image: Image.Image, box: Box, canvas: int, context_scale: float, face_scale: float
) -> tuple[RGBImage, RGBImage, float, tuple[float, float, float, float]]:
    """One face's two crops, the shorter side of its box and the box inside the context crop (fractions)."""
    region = scaled_box(image.width, image.height, box, context_scale)
    rw, rh = region[2] - region[0], region[3] - region[1]
    inner = (
        max((box[0] - region[0]) / rw, 0.0),
        max((box[1] - region[1]) / rh, 0.0),
        min((box[2] - region[0]) / rw, 1.0),
        min((box[3] - region[1]) / rh, 1.0),
    )
    return (
        crop(image, box, context_scale, canvas),
        crop(image, box, face_scale, canvas),
        min(box[2] - box[0], box[3] - box[1]),
        inner,
    )


def stack_crops(
    samples: list[Sample],
    contexts: list[RGBImage],
    faces: list[RGBImage],
    sizes: list[float],
    inner: list[tuple[float, float, float, float]],
    canvas: int,
) -> CropSet:
    shape = (0, canvas, canvas, 3)
    return CropSet(
        samples,
        np.stack(contexts) if contexts else np.zeros(shape, np.uint8),
        np.stack(faces) if faces else np.zeros(shape, np.uint8),
        np.array(sizes, dtype=np.float32),
        np.array(inner, dtype=np.float32).reshape(-1, 4),
    )


def build_crops(
    samples: Sequence[Sample],
    boxes: dict[str, Box | None],
    canvas: int = CANVAS,
    context_scale: float = CONTEXT_SCALE,
    face_scale: float = FACE_SCALE,
) -> CropSet:
    kept: list[Sample] = []
    contexts: list[RGBImage] = []
    faces: list[RGBImage] = []
    sizes: list[float] = []
    inner: list[tuple[float, float, float, float]] = []
    for sample in samples:
        box = boxes.get(sample.key)
        if box is None:
            continue
        ctx, face, size, where = crop_sample(load_rgb(sample.path), box, canvas, context_scale, face_scale)
        kept.append(sample)
        contexts.append(ctx)
        faces.append(face)
        sizes.append(size)
        inner.append(where)
    return stack_crops(kept, contexts, faces, sizes, inner, canvas)
