"""Every image's frozen-backbone features, extracted once and reused by every fold and the final model.

The backbones are frozen, so what the head trains on is a fixed function of the image, its face box and
the augmentation draw: extracting it once per image (the crops as served, plus ``passes`` augmented
draws) turns a leave-one-setup-out run over 19 sources from 19 extractions into one, and a fold into a
head fit of seconds. Alongside, once per image: the face quality the served gate looks at, and the
MiniFASNetV2 peer's score on the same face (comparison only).

Stored per source, as ``<dir>/<key>/<family>__<source>.npz`` (features, numbers and image paths only, no
pixels), where ``key`` names what the features depend on (backbone, crops, passes, synthetic share,
seed); an interrupted extraction resumes at the first missing source. Each source's augmentation draws
come from its own seeded stream, so a source's rows do not depend on which other sources are present.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ageguard.eval.antispoof import Peer
from ageguard.train.antispoof.data import (
    Detect,
    Sample,
    crop_sample,
    find_boxes,
    load_rgb,
    stack_crops,
)
from ageguard.train.antispoof.trainer import Features, Log, TrainConfig, extract, feature_session
from ageguard.vision.liveness.base import FaceQuality, QualityGate, face_quality
from ageguard.vision.liveness.crops import Box, quality_crop
from ageguard.vision.types import Face, RGBImage

VERSION = 1  # bump when what a row means changes


def cache_key(cfg: TrainConfig) -> str:
    parts = {
        "version": VERSION,
        "backbone": cfg.backbone,
        "crop_size": cfg.crop_size,
        "context_scale": cfg.context_scale,
        "face_scale": cfg.face_scale,
        "passes": cfg.passes,
        "synthetic_share": cfg.synthetic_share,
        "seed": cfg.seed,
    }
    if cfg.scene_light:  # keys of the runs before the option stay as they were
        parts["scene_light"] = cfg.scene_light
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class FeatureTable:
    """All images of all sources: per image (``samples``) and per augmented row (``aug``)."""

    samples: list[Sample]  # images with a face
    clean: npt.NDArray[np.float32]  # N x D: the crops as served
    quality: npt.NDArray[np.float32]  # N x 3: face_px, brightness, sharpness (the served gate's inputs)
    peer_score: npt.NDArray[np.float32]  # N, NaN where the peer was not run
    peer_real: npt.NDArray[np.bool_]  # N, the peer's own decision (argmax)
    aug: Features  # rows' ``sample`` index ``samples``
    no_face: list[Sample]  # images where the detector found no face

    def quality_ok(self, gate: QualityGate) -> npt.NDArray[np.bool_]:
        return np.array(
            [FaceQuality(*(float(v) for v in q)).problem(gate) is None for q in self.quality], dtype=bool
        )

    def sources(self) -> list[str]:
        return sorted({s.source for s in self.samples} | {s.source for s in self.no_face})


def _face(box: Box) -> Face:
    return Face(box=box, landmarks=np.zeros((5, 2), np.float32), score=1.0)


def _source_file(folder: Path, samples: Sequence[Sample]) -> Path:
    family, source = samples[0].family, samples[0].source
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{family}__{source}")
    return folder / f"{safe}.npz"


def _extract_source(
    samples: list[Sample],
    boxes: dict[str, Box | None],
    cfg: TrainConfig,
    session: ort.InferenceSession,
    peer: Peer | None,
) -> dict[str, npt.NDArray[np.generic]]:
    kept: list[Sample] = []
    contexts: list[RGBImage] = []
    faces: list[RGBImage] = []
    sizes: list[float] = []
    inner: list[tuple[float, float, float, float]] = []
    quality: list[tuple[float, float, float]] = []
    peer_score: list[float] = []
    peer_real: list[bool] = []
    for sample in samples:
        box = boxes.get(sample.key)
        if box is None:
            continue
        image = load_rgb(sample.path)
        ctx, face, size, where = crop_sample(image, box, cfg.crop_size, cfg.context_scale, cfg.face_scale)
        kept.append(sample)
        contexts.append(ctx)
        faces.append(face)
        sizes.append(size)
        inner.append(where)
        q = face_quality(quality_crop(image, box), _face(box))
        quality.append((q.face_px, q.brightness, q.sharpness))
        if peer is not None:
            score, real = peer.predict(image, _face(box))
            peer_score.append(score)
            peer_real.append(real)
        else:
            peer_score.append(float("nan"))
            peer_real.append(False)
    crops = stack_crops(kept, contexts, faces, sizes, inner, cfg.crop_size)
    # The source's own augmentation stream: its rows do not depend on the other sources.
    own = replace(cfg, seed=cfg.seed * 1_000_003 + zlib.crc32(samples[0].source.encode()))
    clean = extract(session, crops, 0, own)
    aug = extract(session, crops, cfg.passes, own)
    kept_keys = {s.key for s in kept}
    return {
        "keys": np.array([s.key for s in kept]),
        "no_face": np.array([s.key for s in samples if s.key not in kept_keys]),
        "clean": clean.x,
        "quality": np.array(quality, dtype=np.float32).reshape(-1, 3),
        "peer_score": np.array(peer_score, dtype=np.float32),
        "peer_real": np.array(peer_real, dtype=bool),
        "aug": aug.x,
        "aug_real": aug.real,
        "aug_synthetic": aug.synthetic,
        "aug_sample": aug.sample,
    }


def build(
    samples: Sequence[Sample],
    cfg: TrainConfig,
    cache: Path,
    detect: Detect,
    *,
    peer_path: Path | None = None,
    box_cache: Path | None = None,
    log: Log = print,
) -> FeatureTable:
    """The table of ``samples`` (every source's file read from ``cache``, extracted where missing)."""
    folder = cache / cache_key(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    config = {k: getattr(cfg, k) for k in ("backbone", "crop_size", "context_scale", "face_scale", "passes")}
    config |= {"synthetic_share": cfg.synthetic_share, "seed": cfg.seed, "scene_light": cfg.scene_light}
    config["version"] = VERSION
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.family, s.source)].append(s)
    session: ort.InferenceSession | None = None
    peer: Peer | None = None
    parts: list[tuple[list[Sample], dict[str, npt.NDArray[np.generic]]]] = []
    for key in sorted(groups):
        group = groups[key]
        path = _source_file(folder, group)
        data: dict[str, npt.NDArray[np.generic]] | None = None
        if path.exists():
            with np.load(path) as npz:
                data = {k: npz[k] for k in npz.files}
            wanted = {s.key for s in group}
            if set(data["keys"].tolist()) | set(data["no_face"].tolist()) != wanted:
                data = None  # another selection of the source (limit, seed): extract again
            elif peer_path is not None and np.isnan(data["peer_score"]).any():
                data = None
        if data is None:
            log(f"{key[0]}/{key[1]}: {len(group)} images; finding faces, extracting features")
            if session is None:
                session = feature_session(cfg.backbone, cfg.threads)
                peer = Peer(peer_path) if peer_path is not None else None
            boxes = find_boxes(group, detect, box_cache)
            data = _extract_source(group, boxes, cfg, session, peer)
            np.savez(path, **data)  # type: ignore[arg-type]
        parts.append((group, data))
    return _concatenate(parts)


def _concatenate(parts: list[tuple[list[Sample], dict[str, npt.NDArray[np.generic]]]]) -> FeatureTable:
    samples: list[Sample] = []
    no_face: list[Sample] = []
    clean, quality, peer_score, peer_real = [], [], [], []
    aug_x, aug_real, aug_syn, aug_sample = [], [], [], []
    for group, data in parts:
        by_key = {s.key: s for s in group}
        offset = len(samples)
        samples += [by_key[k] for k in data["keys"].tolist()]
        no_face += [by_key[k] for k in data["no_face"].tolist()]
        clean.append(data["clean"])
        quality.append(data["quality"])
        peer_score.append(data["peer_score"])
        peer_real.append(data["peer_real"])
        aug_x.append(data["aug"])
        aug_real.append(data["aug_real"])
        aug_syn.append(data["aug_synthetic"])
        aug_sample.append(data["aug_sample"].astype(np.intp) + offset)
    width = next((c.shape[1] for c in clean if c.size), 0)

    def cat(arrays: list[npt.NDArray[np.generic]], dtype: type, cols: int = 0) -> npt.NDArray[np.generic]:
        kept = [a for a in arrays if len(a)]
        if not kept:
            return np.zeros((0, cols) if cols else (0,), dtype=dtype)
        return np.concatenate(kept).astype(dtype)

    return FeatureTable(
        samples=samples,
        clean=cat(clean, np.float32, width),  # type: ignore[arg-type]
        quality=cat(quality, np.float32, 3),  # type: ignore[arg-type]
        peer_score=cat(peer_score, np.float32),  # type: ignore[arg-type]
        peer_real=cat(peer_real, np.bool_),  # type: ignore[arg-type]
        aug=Features(
            cat(aug_x, np.float32, width),  # type: ignore[arg-type]
            cat(aug_real, np.float32),  # type: ignore[arg-type]
            cat(aug_syn, np.bool_),  # type: ignore[arg-type]
            cat(aug_sample, np.intp),  # type: ignore[arg-type]
        ),
        no_face=no_face,
    )
