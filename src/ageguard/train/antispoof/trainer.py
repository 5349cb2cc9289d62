"""Training, calibration and export of the liveness model, reproducible from a seed.

The recipe (``ageguard train antispoof``):

1. Find the face in every image of fas-dev, nuaa-dev and a sample of utkface-dev (extra live faces) with
   the product's detector and keep the two liveness crops in memory.
2. Hold out a subject-disjoint validation share of every source for calibration.
3. Turn every training crop pair into features (a frozen backbone's activations, pooled; see
   :mod:`ageguard.train.antispoof.graph`), ``passes`` times under augmentation: honest capture variation
   for all, and synthetic screen replays and prints made from live faces.
4. Train a small MLP on them, weighting every (source, live/attack/synthetic) group alike, with an
   adversarial source classifier on live faces so that no source's look means "live".
5. Pick each level's threshold on the validation scores (target BPCER per level) with an uncertainty
   band around it; export backbone + head as one ONNX file and the decision policy as JSON beside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from PIL import Image
from torch import nn

from ageguard.train.antispoof import augment, graph
from ageguard.train.antispoof.data import (
    CropSet,
    Detect,
    Sample,
    build_crops,
    find_boxes,
    load_fas,
    load_labelled,
    load_nuaa,
    load_utk,
)
from ageguard.train.antispoof.model import CROP_SIZE, DomainHead, Head
from ageguard.vision.liveness.base import LEVELS, DecisionPolicy, LevelThresholds, QualityGate

Log = Callable[[str], None]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
T = TypeVar("T")


@dataclass
class TrainConfig:
    seed: int = 0
    # Keys of graph.BACKBONES, "+" for features side by side: the face detector's texture statistics and a
    # general-purpose network's generalise to unseen sources better together than either alone.
    backbone: str = "retinaface+mobilenetv3"
    crop_size: int = CROP_SIZE  # both crops, pixels
    context_scale: float = 1.3  # the two crops: face box scaled about its centre (see vision/liveness/crops)
    face_scale: float = 0.6
    passes: int = 3  # augmented feature passes over the training crops
    epochs: int = 40
    batch: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-2
    hidden: int = 64
    synthetic_share: float = 0.4  # of live faces in each augmented pass, turned into synthetic attacks
    domain_weight: float = 0.3  # gradient-reversal weight of the live-face source classifier (0: off)
    synthetic_weight: float = 0.5  # a synthetic-attack group's weight against a real group's (0: unused)
    scene_light: float = (
        0.0  # share of augmented captures given one room's light (white balance, dim, backlight)
    )
    utk_count: int = 1500
    val_share: float = 0.15
    threads: int = 1  # torch / onnxruntime threads; one more thread prepares the augmented crops
    # Target BPCER per level on the validation split, and the uncertainty band (logit units) around it.
    target_bpcer: dict[str, float] = field(
        default_factory=lambda: {"low": 0.01, "medium": 0.03, "high": 0.08}
    )
    band: float = 0.4
    quality: QualityGate = field(default_factory=QualityGate)
    # Folds: leave these sources / subjects out entirely (evaluation runs only).
    exclude_sources: tuple[str, ...] = ()
    exclude_subjects: tuple[str, ...] = ()
    limit: int = 0  # use at most this many images per (source, label): tiny runs for tests
    # Folders of labelled images in fas-dev's layout (a deployment's own captures), trained on as sources.
    extra: tuple[str, ...] = ()


# ---------------------------------------------------------------- data


def load_samples(root: Path, cfg: TrainConfig) -> list[Sample]:
    samples = load_fas(root) + load_nuaa(root) + load_utk(root, cfg.utk_count, cfg.seed)
    samples += [s for folder in cfg.extra for s in load_labelled(Path(folder))]
    samples = [
        s for s in samples if s.source not in cfg.exclude_sources and s.subject not in cfg.exclude_subjects
    ]
    if cfg.limit:
        rng = random.Random(cfg.seed)
        groups: dict[tuple[str, bool], list[Sample]] = defaultdict(list)
        for s in samples:
            groups[(s.source, s.real)].append(s)
        samples = [
            s for key in sorted(groups) for s in rng.sample(groups[key], min(cfg.limit, len(groups[key])))
        ]
    return samples


def split_by_subject(samples: Sequence[Sample], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and validation indices; every subject of a source falls on one side only.

    A source with several subjects gives ``share`` of them to validation. Sources with a single subject
    (a capture setup: one person, one camera, one room, such as the webcam pool's) are pooled with the
    other single-subject sources of their folder, and ``share`` of those *setups* go to validation whole:
    the thresholds then see live faces of setups the head never saw, which is what a new customer is.
    """
    rng = random.Random(seed)
    by_source: dict[str, list[str]] = defaultdict(list)
    family: dict[str, str] = {}
    for s in samples:
        family.setdefault(s.source, s.family)
        if s.subject not in by_source[s.source]:
            by_source[s.source].append(s.subject)
    groups: dict[str, list[str]] = defaultdict(list)
    for source in sorted(by_source):
        subjects = by_source[source]
        key = f"setups:{family[source]}" if len(subjects) == 1 else f"source:{source}"
        groups[key] += subjects
    val_subjects: set[str] = set()
    for key in sorted(groups):
        subjects = sorted(groups[key])
        rng.shuffle(subjects)
        n = max(1, round(len(subjects) * share)) if len(subjects) > 1 else 0
        val_subjects.update(subjects[:n])
    train = [i for i, s in enumerate(samples) if s.subject not in val_subjects]
    val = [i for i, s in enumerate(samples) if s.subject in val_subjects]
    return train, val


# ---------------------------------------------------------------- batches


def _view(
    canvas: npt.NDArray[np.float32], size: int, rng: np.random.Generator | None
) -> npt.NDArray[np.float32]:
    """A square view of the canvas resized to ``size``: jittered in training, the whole canvas otherwise."""
    h = canvas.shape[0]
    if rng is None or rng.random() < 0.25:
        box = (0.0, 0.0, float(h), float(h))
    else:
        side = h * rng.uniform(0.86, 1.0)
        x0, y0 = rng.uniform(0, h - side), rng.uniform(0, h - side)
        box = (x0, y0, x0 + side, y0 + side)
    im = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, box=box), dtype=np.float32)


def make_batch(
    crops: CropSet,
    index: Sequence[int],
    synthetic: Sequence[bool],
    rng: np.random.Generator | None,
    size: int = CROP_SIZE,
    scene_light: float = 0.0,
) -> Batch:
    contexts, faces, labels = [], [], []
    for i, synth in zip(index, synthetic, strict=True):
        ctx = crops.context[i].astype(np.float32)
        face = crops.face[i].astype(np.float32)
        real = bool(crops.samples[i].real)
        if rng is not None:
            flipped = rng.random() < 0.5
            if flipped:
                ctx, face = ctx[:, ::-1], face[:, ::-1]
            if synth:
                attack = augment.replay_attack if rng.random() < 0.5 else augment.print_attack
                ctx, face = attack(ctx, face, _inner(crops, i, flipped), rng)
                real = False
            if scene_light > 0 and rng.random() < scene_light:
                ctx, face = augment.scene_light(ctx, face, _inner(crops, i, flipped), rng)
            ctx, face = augment.capture(ctx, rng), augment.capture(face, rng)
        contexts.append(_view(ctx, size, rng))
        faces.append(_view(face, size, rng))
        labels.append(1.0 if real else 0.0)
    return (
        torch.from_numpy(np.stack(contexts).transpose(0, 3, 1, 2).copy()),
        torch.from_numpy(np.stack(faces).transpose(0, 3, 1, 2).copy()),
        torch.tensor(labels, dtype=torch.float32),
    )


def _inner(crops: CropSet, i: int, flipped: bool) -> tuple[float, float, float, float]:
    left, top, right, bottom = (float(v) for v in crops.inner[i])
    return (1.0 - right, top, 1.0 - left, bottom) if flipped else (left, top, right, bottom)


def _prefetch(make: Callable[[], T], count: int, depth: int = 3) -> Iterator[T]:
    """Batches made in order by one background thread (augmentation overlaps the training step; the
    single producer keeps the random stream, hence the run, reproducible)."""
    q: queue.Queue[T | BaseException] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for _ in range(count):
                q.put(make())
        except BaseException as exc:  # surfaced in the consumer
            q.put(exc)

    threading.Thread(target=produce, daemon=True).start()
    for _ in range(count):
        item = q.get()
        if isinstance(item, BaseException):
            raise item
        yield item


# ---------------------------------------------------------------- features and head


def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True, warn_only=True)


def backbones(name: str) -> list[tuple[graph.Backbone, Path]]:
    """The backbone specs named by ``name`` ("a+b") and their verified files from the model store."""
    from ageguard.models import store

    specs = [graph.BACKBONES[part] for part in name.split("+")]
    return [(spec, store.ensure(spec.asset)) for spec in specs]


def feature_session(backbone: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    blob = graph.build(backbones(backbone)).SerializeToString()
    return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])


@dataclass
class Features:
    """Feature rows and where they came from."""

    x: npt.NDArray[np.float32]
    real: npt.NDArray[np.float32]  # 1 live, 0 attack (synthetic attacks included)
    synthetic: npt.NDArray[np.bool_]
    sample: npt.NDArray[np.intp]  # index into the crop set


def extract(
    session: ort.InferenceSession, crops: CropSet, passes: int, cfg: TrainConfig, chunk: int = 128
) -> Features:
    """``passes`` = 0: the crops as served; otherwise that many augmented passes, where a share of the
    live faces become synthetic attacks."""
    rng = np.random.default_rng(cfg.seed)
    n = len(crops.samples)
    jobs = iter([(k, lo) for k in range(max(passes, 1)) for lo in range(0, n, chunk)])
    count = max(passes, 1) * len(range(0, n, chunk))

    def make() -> tuple[Batch, list[bool], list[int]]:
        _, lo = next(jobs)
        index = list(range(lo, min(lo + chunk, n)))
        if passes == 0:
            synthetic = [False] * len(index)
            return make_batch(crops, index, synthetic, None, cfg.crop_size), synthetic, index
        synthetic = [crops.samples[i].real and bool(rng.random() < cfg.synthetic_share) for i in index]
        return make_batch(crops, index, synthetic, rng, cfg.crop_size, cfg.scene_light), synthetic, index

    xs, ys, syn, idx = [], [], [], []
    for (ctx, face, y), synthetic, index in _prefetch(make, count):
        xs.append(session.run(["features"], {"context": ctx.numpy(), "face": face.numpy()})[0])
        ys.append(y.numpy())
        syn += synthetic
        idx += index
    if not xs:
        return Features(
            np.zeros((0, 0), np.float32), np.zeros(0, np.float32), np.zeros(0, bool), np.zeros(0, np.intp)
        )
    return Features(
        np.concatenate(xs).astype(np.float32),
        np.concatenate(ys).astype(np.float32),
        np.array(syn, dtype=bool),
        np.array(idx, dtype=np.intp),
    )


def _group_weights(
    feats: Features, samples: Sequence[Sample], synthetic_weight: float = 0.5
) -> npt.NDArray[np.float32]:
    """Every (source, live / attack / synthetic attack) group weighs the same (synthetic ones
    ``synthetic_weight`` of that)."""
    keys = [
        (samples[i].source, int(r), bool(s))
        for i, r, s in zip(feats.sample, feats.real, feats.synthetic, strict=True)
    ]
    counts: dict[tuple[str, int, bool], int] = defaultdict(int)
    for key in keys:
        counts[key] += 1
    return np.array([(synthetic_weight if key[2] else 1.0) / counts[key] for key in keys], dtype=np.float32)


@dataclass
class Standardiser:
    mean: npt.NDArray[np.float32]
    scale: npt.NDArray[np.float32]


def train_head(
    feats: Features, samples: Sequence[Sample], cfg: TrainConfig, log: Log = print
) -> tuple[Head, Standardiser]:
    """The head on feature rows whose ``sample`` indexes ``samples`` (their sources weigh the groups)."""
    seed_everything(cfg.seed, cfg.threads)
    std = Standardiser(
        feats.x.mean(axis=0).astype(np.float32), (feats.x.std(axis=0) + 1e-6).astype(np.float32)
    )
    x = torch.from_numpy((feats.x - std.mean) / std.scale)
    y = torch.from_numpy(feats.real)
    w = torch.from_numpy(_group_weights(feats, samples, cfg.synthetic_weight))
    sources = sorted({samples[i].source for i in feats.sample})
    domain = torch.tensor(
        [
            sources.index(samples[i].source) if r > 0.5 and not s else -1
            for i, r, s in zip(feats.sample, feats.real, feats.synthetic, strict=True)
        ],
        dtype=torch.long,
    )
    head = Head(x.shape[1], cfg.hidden)
    domain_head = DomainHead(cfg.hidden, max(len(sources), 1))
    params = list(head.parameters()) + (list(domain_head.parameters()) if cfg.domain_weight > 0 else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    n = len(y)
    start = time.monotonic()
    for epoch in range(cfg.epochs):
        head.train()
        perm = torch.randperm(n, generator=generator)
        total = 0.0
        for lo in range(0, n, cfg.batch):
            j = perm[lo : lo + cfg.batch]
            logits, hidden = head(x[j])
            bce = nn.functional.binary_cross_entropy_with_logits(logits, y[j], reduction="none")
            loss = (bce * w[j]).sum() / w[j].sum().clamp_min(1e-12)
            live = domain[j] >= 0
            if cfg.domain_weight > 0 and int(live.sum()) > 1:
                dom_logits = domain_head(hidden[live], cfg.domain_weight)
                loss = loss + nn.functional.cross_entropy(dom_logits, domain[j][live])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(j)
        if (epoch + 1) % 10 == 0 or epoch + 1 == cfg.epochs:
            log(
                f"epoch {epoch + 1}/{cfg.epochs} loss {total / max(n, 1):.4f} "
                f"({time.monotonic() - start:.0f} s)"
            )
    head.eval()
    return head, std


@torch.no_grad()
def score_features(head: Head, std: Standardiser, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    head.eval()
    logits, _ = head(torch.from_numpy((x - std.mean) / std.scale))
    return torch.sigmoid(logits).numpy()


def roc_auc(scores: npt.NDArray[np.float32], labels: npt.NDArray[np.float32]) -> float:
    pos, neg = scores[labels > 0.5], scores[labels <= 0.5]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), dtype=np.float64)
    ranks[order] = np.arange(1, len(order) + 1)
    # Ties: average ranks.
    values = np.concatenate([pos, neg])[order]
    _, first, counts = np.unique(values, return_index=True, return_counts=True)
    for f, c in zip(first, counts, strict=True):
        if c > 1:
            ranks[order[f : f + c]] = ranks[order[f : f + c]].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


# ---------------------------------------------------------------- calibration and export


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def calibrate(
    scores: npt.NDArray[np.float32], labels: npt.NDArray[np.float32], cfg: TrainConfig
) -> DecisionPolicy:
    """Per level, the threshold that rejects ``target_bpcer`` of the live validation faces, with a band."""
    live = np.sort(scores[labels > 0.5])
    levels: dict[Any, LevelThresholds] = {}
    for level in LEVELS:
        target = cfg.target_bpcer[level]
        t = float(np.quantile(live, target)) if len(live) else 0.5
        z = _logit(t)
        levels[level] = LevelThresholds(
            threshold=round(t, 6),
            lower=round(_sigmoid(z - cfg.band), 6),
            upper=round(_sigmoid(z + cfg.band), 6),
        )
    return DecisionPolicy(levels=levels, quality=cfg.quality)


def export_onnx(head: Head, std: Standardiser, backbone: str, path: Path) -> None:
    layers = [(lin.weight.detach().numpy(), lin.bias.detach().numpy()) for lin in head.layers()]
    model = graph.build(backbones(backbone), layers, std.mean, std.scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class TrainResult:
    onnx: Path
    policy_json: Path
    val_auc: float
    seconds: float


def run(
    root: Path,
    out_dir: Path,
    cfg: TrainConfig,
    detect: Detect,
    box_cache: Path | None = None,
    log: Log = print,
) -> TrainResult:
    start = time.monotonic()
    seed_everything(cfg.seed, cfg.threads)
    samples = load_samples(root, cfg)
    log(f"{len(samples)} images; finding faces")
    boxes = find_boxes(samples, detect, box_cache)
    crops = build_crops(
        samples, boxes, canvas=cfg.crop_size, context_scale=cfg.context_scale, face_scale=cfg.face_scale
    )
    log(f"{len(crops.samples)} faces cropped ({time.monotonic() - start:.0f} s)")
    train_idx, val_idx = split_by_subject(crops.samples, cfg.val_share, cfg.seed)
    train_set, val_set = crops.subset(train_idx), crops.subset(val_idx)
    log(f"train {len(train_set.samples)}, validation {len(val_set.samples)}")
    session = feature_session(cfg.backbone, cfg.threads)
    train_feats = extract(session, train_set, cfg.passes, cfg)
    val_feats = extract(session, val_set, 0, cfg)
    log(f"{len(train_feats.real)} training feature rows ({time.monotonic() - start:.0f} s)")
    head, std = train_head(train_feats, train_set.samples, cfg, log)
    scores = score_features(head, std, val_feats.x) if len(val_feats.real) else np.zeros(0, np.float32)
    auc = roc_auc(scores, val_feats.real)
    policy = calibrate(scores, val_feats.real, cfg)
    info = {
        "images": len(crops.samples),
        "train_images": len(train_set.samples),
        "validation_images": len(val_set.samples),
        "validation_auc": round(auc, 5),
    }
    result = write_model(out_dir, head, std, policy, cfg, info, start)
    log(f"validation AUC {auc:.4f}; wrote {result.onnx} and {result.policy_json} in {result.seconds:.0f} s")
    return result


def write_model(
    out_dir: Path,
    head: Head,
    std: Standardiser,
    policy: DecisionPolicy,
    cfg: TrainConfig,
    info: dict[str, Any],
    start: float,
) -> TrainResult:
    """``antispoof.onnx`` (backbones + head, one file) and ``antispoof.json`` (its SHA-256, policy, how)."""
    onnx_path = out_dir / "antispoof.onnx"
    export_onnx(head, std, cfg.backbone, onnx_path)
    seconds = time.monotonic() - start
    meta = {
        "model": onnx_path.name,
        "sha256": sha256(onnx_path),
        "inputs": {"context": [3, cfg.crop_size, cfg.crop_size], "face": [3, cfg.crop_size, cfg.crop_size]},
        "crops": {"context_scale": cfg.context_scale, "face_scale": cfg.face_scale},
        **policy.to_json(),
        "training": {
            "config": {k: v for k, v in asdict(cfg).items() if k != "quality"},
            **info,
            "seconds": round(seconds, 1),
            "torch": torch.__version__,
            "backbone": " + ".join(spec.description for spec, _ in backbones(cfg.backbone)),
        },
    }
    policy_path = out_dir / "antispoof.json"
    policy_path.write_text(json.dumps(meta, indent=2) + "\n")
    return TrainResult(onnx_path, policy_path, float(info.get("validation_auc", float("nan"))), seconds)
