"""What the frozen age networks know, band by band: ``ageguard train age --probe``.

Two questions decide whether a head on the frozen features can fix an age band, and both are answered
from the feature cache alone (no training of a head):

- how each network errs in each band of each source (signed bias and MAE of faceres-deep's distribution
  mean, of face-api's regressed age and of their plain mean): a head can only re-weigh what one of them
  already gets right;
- whether the features hold more about being a minor than the estimated age does: a logistic classifier
  of under-18 against 25-and-over on all 1,125 numbers, fitted on the training parts, against the plain
  mean's own ranking, both as ROC AUC on the unseen parts. If the classifier ranks no better, no head on
  these features can pull teenagers away from the young adults they are confused with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ageguard.eval.age import BANDS
from ageguard.eval.antispoof import roc_auc
from ageguard.train.age.trainer import Pool, band_index, moments
from ageguard.vision.age.features import AGE_CLASSES, DESCRIPTOR_DIM

FloatArray = npt.NDArray[np.float64]
PROBS = slice(DESCRIPTOR_DIM, DESCRIPTOR_DIM + AGE_CLASSES)
FACEAPI = DESCRIPTOR_DIM + AGE_CLASSES
MIN_BAND_FACES = 10
TEEN_MIN_FACES = 5  # a source's unseen part needs this many teenagers to be reported


def network_ages(pool: Pool) -> dict[str, FloatArray]:
    """faceres-deep's distribution mean, face-api's age and their plain mean, per face."""
    faceres, _ = moments(pool.x[:, PROBS].astype(np.float64))
    faceapi = pool.x[:, FACEAPI].astype(np.float64) * 100.0
    return {"faceres-deep": faceres, "face-api": faceapi, "mean": 0.5 * (faceres + faceapi)}


def network_bands(pool: Pool) -> list[dict[str, Any]]:
    """One row per (source, band) with at least ``MIN_BAND_FACES`` faces: each estimate's bias and MAE."""
    ages = network_ages(pool)
    bands = band_index(pool.age)
    truth = pool.age.astype(np.float64)
    rows = []
    for source in sorted(set(pool.source.tolist())):
        for b, (band, _, _) in enumerate(BANDS):
            cell = (pool.source == source) & (bands == b)
            if cell.sum() < MIN_BAND_FACES:
                continue
            row: dict[str, Any] = {"source": source, "band": band, "n": int(cell.sum())}
            for name, estimate in ages.items():
                error = estimate[cell] - truth[cell]
                row[name] = {"bias": float(error.mean()), "mae": float(np.abs(error).mean())}
            row["mean_ge_25"] = float((ages["mean"][cell] >= 25).mean())
            rows.append(row)
    return rows


def minor_classifier(
    train: Pool, l2: float = 1.0, steps: int = 25
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Logistic regression of under-18 (1) against 25+ (0) on the standardised features, each
    (source, class) cell weighing the same; Newton steps, so the result is deterministic.
    Returns (mean, scale, coefficients with the bias last)."""
    keep = (train.age < 18) | (train.age >= 25)
    x = train.x[keep].astype(np.float64)
    y = (train.age[keep] < 18).astype(np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    design = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    weights = np.zeros(len(y))
    sources = train.source[keep]
    for source in np.unique(sources):
        for label in (0.0, 1.0):
            cell = (sources == source) & (y == label)
            if cell.any():
                weights[cell] = 1.0 / cell.sum()
    weights *= len(weights) / weights.sum()
    beta = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-design @ beta))
        gradient = design.T @ (weights * (p - y)) + l2 * beta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + l2 * np.eye(len(beta))
        beta -= np.linalg.solve(hessian, gradient)
    return mean, scale, beta


def minor_separability(train: Pool, unseen: Pool) -> list[dict[str, Any]]:
    """Per source of ``unseen`` with teenagers: AUC of 13-17 against 25+ by the classifier and by the age."""
    mean, scale, beta = minor_classifier(train)
    design = np.hstack([(unseen.x.astype(np.float64) - mean) / scale, np.ones((len(unseen), 1))])
    minor_score = design @ beta
    age = network_ages(unseen)["mean"]
    rows = []
    for source in sorted(set(unseen.source.tolist())):
        here = unseen.source == source
        teen = here & (unseen.age >= 13) & (unseen.age <= 17)
        adult = here & (unseen.age >= 25)
        if teen.sum() < TEEN_MIN_FACES or not adult.any():
            continue
        pick = teen | adult
        rows.append({
            "source": source,
            "teens": int(teen.sum()),
            "adults": int(adult.sum()),
            "classifier_auc": roc_auc(minor_score[pick], teen[pick]),  # its "real" class: the teenagers
            "age_auc": roc_auc(-age[pick], teen[pick]),
        })  # fmt: skip
    return rows


def markdown(bands: list[dict[str, Any]], separability: list[dict[str, Any]]) -> str:
    lines = [
        "| source | band | n | faceres-deep bias / MAE | face-api bias / MAE | mean bias / MAE "
        "| mean >= 25 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in bands:
        cells = " | ".join(
            f"{r[k]['bias']:+.2f} / {r[k]['mae']:.2f}" for k in ("faceres-deep", "face-api", "mean")
        )
        lines.append(f"| {r['source']} | {r['band']} | {r['n']} | {cells} | {100 * r['mean_ge_25']:.1f}% |")
    lines += [
        "",
        "| unseen part | 13-17 | 25+ | minor classifier AUC | plain mean's AUC |",
        "|---|---|---|---|---|",
    ]
    for r in separability:
        aucs = f"{r['classifier_auc']:.3f} | {r['age_auc']:.3f}"
        lines.append(f"| {r['source']} | {r['teens']} | {r['adults']} | {aucs} |")
    return "\n".join(lines)
