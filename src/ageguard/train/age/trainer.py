"""``ageguard train age``: a small head on the frozen age networks' outputs, chosen by held-out numbers.

The head reads :data:`ageguard.vision.age.features.FEATURE_DIM` numbers per face (faceres-deep's
descriptor and age distribution, face-api's age) and predicts a distribution over ages 1..100; the age is
its mean. It is trained with a label-distribution loss (a Gaussian around the true age) plus the absolute
error of the mean, every face weighed so that each (source, age band) cell counts as the bands of a uniform
population would, which lifts the scarce teenagers and young adults.

Splits (see :func:`split_of`): All-Age-Faces by person, the id-less sources by a hash of the file name, each
source in train / validation / test parts; utkface-dev is never trained on. Variants are compared on the
validation parts; the test parts and utkface-dev are only reported. The shipped st_dev is the predicted
distribution's own spread rescaled per age (a fitted line) so that about 68% of validation errors fall
within it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ageguard.eval.age import BANDS
from ageguard.train.age.features import QUALITY_KEYS
from ageguard.train.age.splits import split_of
from ageguard.vision.age.estimator import QualityPriors, StDevLine
from ageguard.vision.age.features import AGE_CLASSES, FEATURE_DIM

FloatArray = npt.NDArray[np.float64]
MIN_ST_DEV = 1.0


@dataclass(frozen=True)
class Pool:
    x: npt.NDArray[np.float32]
    age: npt.NDArray[np.float32]
    gender: npt.NDArray[np.int8]
    race: npt.NDArray[np.int8]
    source: npt.NDArray[np.str_]
    name: npt.NDArray[np.str_]  # image file name
    identity: npt.NDArray[np.str_]
    quality: npt.NDArray[np.float32]

    @classmethod
    def load(cls, paths: list[Path]) -> Pool:
        parts = [np.load(p) for p in paths]
        return cls(**{f: np.concatenate([p[f] for p in parts]) for f in cls.__dataclass_fields__})

    def take(self, mask: npt.NDArray[np.bool_]) -> Pool:
        return Pool(**{f: getattr(self, f)[mask] for f in self.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.age)


def splits(pool: Pool) -> npt.NDArray[np.str_]:
    return np.array(
        [split_of(s, f, i) for s, f, i in zip(pool.source, pool.name, pool.identity, strict=True)]
    )


def band_index(age: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.intp]:
    edges = np.array([high for _, _, high in BANDS[:-1]], np.float64)
    return np.searchsorted(edges, np.asarray(age, np.float64), side="left").astype(np.intp)


def sample_weights(pool: Pool, teen_boost: float) -> npt.NDArray[np.float32]:
    """Every (source, band) cell weighs the same in total; teens and 18-24 x boost.

    (Weighing bands by their width in years was measured first: it gave 50+ half the weight and left the
    teen band worse than the plain mean of the networks, see docs/models/age.md.)
    """
    bands = band_index(pool.age)
    target = np.full(len(BANDS), 1.0 / len(BANDS))
    weights = np.zeros(len(pool), np.float64)
    for source in np.unique(pool.source):
        in_source = pool.source == source
        for b in range(len(BANDS)):
            cell = in_source & (bands == b)
            if cell.any():
                weights[cell] = target[b] / cell.sum()
    weights *= np.where((bands == 1) | (bands == 2), teen_boost, 1.0)
    # Cells of one or two faces would otherwise dominate: cap any face at 20x the mean weight.
    weights = np.minimum(weights, 20 * weights.mean())
    return (weights / weights.mean()).astype(np.float32)


@dataclass(frozen=True)
class Recipe:
    hidden: int = 256
    dropout: float = 0.2
    label_sigma: float = 2.0
    l1_weight: float = 0.1
    teen_boost: float = 2.0
    epochs: int = 20
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4


@dataclass(frozen=True)
class Head:
    """A trained head as plain arrays: x -> (x - mean) / scale -> [Gemm -> ReLU]* -> Gemm -> softmax."""

    mean: npt.NDArray[np.float32]
    scale: npt.NDArray[np.float32]
    layers: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]  # (W out x in, b)

    def probs(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        h = (x.astype(np.float64) - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T.astype(np.float64) + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        h -= h.max(axis=1, keepdims=True)
        e = np.exp(h)
        return e / e.sum(axis=1, keepdims=True)


def moments(probs: npt.NDArray[np.floating[Any]]) -> tuple[FloatArray, FloatArray]:
    ages = np.arange(1, probs.shape[-1] + 1, dtype=np.float64)
    mean: FloatArray = probs.astype(np.float64) @ ages
    var = probs @ ages**2 - mean**2
    return mean, np.sqrt(np.maximum(var, 0.0))


def train_head(train: Pool, recipe: Recipe, seed: int, log: Callable[[str], None] = print) -> Head:
    """Deterministic for a seed on one machine: one thread, fixed shuffles, deterministic kernels."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    mean = train.x.mean(axis=0)
    scale = np.maximum(train.x.std(axis=0), 1e-6)
    x = torch.from_numpy(((train.x - mean) / scale).astype(np.float32))
    age = torch.from_numpy(train.age.astype(np.float32))
    weight = torch.from_numpy(sample_weights(train, recipe.teen_boost))
    ages = torch.arange(1, AGE_CLASSES + 1, dtype=torch.float32)
    target = torch.exp(-0.5 * ((ages[None] - age[:, None].clamp(1, AGE_CLASSES)) / recipe.label_sigma) ** 2)
    target = target / target.sum(dim=1, keepdim=True)
    modules: list[nn.Module] = []
    width = FEATURE_DIM
    if recipe.hidden:
        modules += [nn.Linear(FEATURE_DIM, recipe.hidden), nn.ReLU(), nn.Dropout(recipe.dropout)]
        width = recipe.hidden
    modules.append(nn.Linear(width, AGE_CLASSES))
    net = nn.Sequential(*modules)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * ((len(train) + recipe.batch - 1) // recipe.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps)
    for epoch in range(recipe.epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(len(train)))
        total = 0.0
        for start in range(0, len(train), recipe.batch):
            idx = order[start : start + recipe.batch]
            logp = torch.log_softmax(net(x[idx]), dim=1)
            kl = (target[idx] * (torch.log(target[idx] + 1e-12) - logp)).sum(dim=1)
            l1 = (logp.exp() @ ages - age[idx]).abs()
            loss = (weight[idx] * (kl + recipe.l1_weight * l1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 9 or epoch == recipe.epochs - 1:
            log(f"  epoch {epoch + 1}/{recipe.epochs}: loss {total / len(train):.4f}")
    net.eval()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    layers = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]
    return Head(mean.astype(np.float32), scale.astype(np.float32), layers)


def quality_factors(pool: Pool, priors: QualityPriors) -> FloatArray:
    keys = list(QUALITY_KEYS)
    return np.array([priors.factor(dict(zip(keys, map(float, q), strict=True))) for q in pool.quality])


def fit_st_dev(
    true: FloatArray, age: FloatArray, spread: FloatArray, factor: FloatArray, weights: FloatArray
) -> StDevLine:
    """The line a + b * spread + c * age fitted to |error| / quality factor, then k for 68% coverage."""
    err = np.abs(age - true) / factor
    root = np.sqrt(weights)
    design = np.stack([np.ones_like(age), spread, age], axis=1)
    coef = np.linalg.lstsq(design * root[:, None], err * root, rcond=None)[0]
    ratio = err / np.maximum(design @ coef, 0.1)
    # The weighted 68th percentile of |error| / expected, so coverage holds in the weighed population.
    order = np.argsort(ratio)
    cum = np.cumsum(weights[order]) / weights.sum()
    k = float(ratio[order][min(int(np.searchsorted(cum, 0.6827)), len(ratio) - 1)])
    return StDevLine(float(coef[0]), float(coef[1]), float(coef[2]), k, MIN_ST_DEV)


def head_json(line: StDevLine, recipe: Recipe, seed: int, onnx_sha256: str) -> dict[str, Any]:
    return {
        "model": "age_head.onnx",
        "sha256": onnx_sha256,
        "feature_dim": FEATURE_DIM,
        "ages": [1, AGE_CLASSES],
        "st_dev": asdict(line),
        "recipe": {**asdict(recipe), "seed": seed},
    }


def write(out_dir: Path, head: Head, line: StDevLine, recipe: Recipe, seed: int) -> Path:
    from ageguard.train.age.export import head_onnx

    blob = head_onnx(head)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "age_head.onnx").write_bytes(blob)
    meta = head_json(line, recipe, seed, hashlib.sha256(blob).hexdigest())
    (out_dir / "age_head.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir / "age_head.onnx"
