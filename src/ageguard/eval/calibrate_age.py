"""Choose the age ensemble's crops and blend, and fit its st_dev, from measured network outputs.

``python -m ageguard.eval.calibrate_age FEATURES.npz [--write]`` (features from
``ageguard.eval.age_features``). Fits on the even-numbered faces and reports on the odd ones, so the
printed held-out figures are not the fit's own; ``--write`` updates ``vision/age/calibration.json``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ageguard.vision.age.ensemble import CALIBRATION_PATH, AgeCalibration

FloatArray = npt.NDArray[np.float64]
# face-api's AgeGenderNet was trained on UTKFace, so its error here is optimistic: never let it weigh
# more than faceres-deep, whatever the dev set says.
MIN_FACERES_WEIGHT = 0.5
# Quality priors (see docs/quality.md): st_dev grows by half per e-fold of blur below the reference,
# doubles for a face at 0 brightness, and grows by 1.5x per unit of yaw beyond a frontal tolerance.
QUALITY_PRIORS = {"blur_gain": 0.5, "dark_ref": 70.0, "dark_gain": 1.0, "yaw_free": 0.15, "yaw_gain": 1.5}


def _moments(probs: FloatArray) -> tuple[FloatArray, FloatArray]:
    ages = np.arange(1, probs.shape[-1] + 1, dtype=np.float64)
    p = probs / probs.sum(axis=-1, keepdims=True)
    mean = (p * ages).sum(-1)
    return mean, np.sqrt(np.maximum((p * (ages - mean[..., None]) ** 2).sum(-1), 0.0))


def _nonneg_lstsq(x: FloatArray, y: FloatArray) -> FloatArray:
    """Least squares with every coefficient >= 0 (drop negative ones and refit)."""
    active = np.ones(x.shape[1], dtype=bool)
    while True:
        coef = np.zeros(x.shape[1])
        coef[active] = np.linalg.lstsq(x[:, active], y, rcond=None)[0]
        if (coef >= 0).all():
            return coef
        active &= coef > 0


def summarise(true: FloatArray, pred: FloatArray, sigma: FloatArray | None = None) -> dict[str, float]:
    err = np.abs(pred - true)
    teen = (true >= 13) & (true <= 17)
    out = {
        "mae": float(err.mean()),
        "mae_13_17": float(err[teen].mean()),
        "teen_ge_25": float((pred[teen] >= 25).mean()),
    }
    if sigma is not None:
        out["cov1"] = float((err <= sigma).mean())
        out["cov2"] = float((err <= 2 * sigma).mean())
    return out


def fit(features: dict[str, Any]) -> tuple[AgeCalibration, dict[str, Any]]:
    true = features["age"].astype(np.float64)
    probs = features["probs"].astype(np.float64)  # N x flip x scale x 100
    api = features["faceapi"].astype(np.float64)  # N x flip x scale
    scales = [float(s) for s in features["scales"]]
    quality = dict(zip([str(k) for k in features["quality_keys"]], features["quality"].T, strict=True))
    train = np.arange(len(true)) % 2 == 0
    test = ~train
    best: tuple[float, dict[str, Any]] | None = None
    table = []
    for i, res_scale in enumerate(scales):
        res_mean, res_std = _moments(probs[:, :, i].mean(axis=1))
        for j, api_scale in enumerate(scales):
            api_age = api[:, :, j].mean(axis=1)
            for weight in np.arange(MIN_FACERES_WEIGHT, 1.0001, 0.05):
                blended = weight * res_mean + (1 - weight) * api_age
                slope, bias = np.polyfit(blended[train], true[train], 1)
                for corrected in (False, True):
                    pred = bias + slope * blended if corrected else blended
                    score = summarise(true[train], pred[train])
                    row = {
                        "faceres_scale": res_scale,
                        "faceapi_scale": api_scale,
                        "weight": round(float(weight), 2),
                        "corrected": corrected,
                        **score,
                    }
                    table.append(row)
                    key = (
                        score["mae"]
                        + max(0.0, score["mae_13_17"] - 3.8)
                        + 20 * max(0.0, score["teen_ge_25"] - 0.04)
                    )
                    if best is None or key < best[0]:
                        best = (
                            key,
                            {
                                **row,
                                "bias": float(bias) if corrected else 0.0,
                                "slope": float(slope) if corrected else 1.0,
                                "res_mean": res_mean,
                                "res_std": res_std,
                                "api_age": api_age,
                            },
                        )
    assert best is not None
    choice = best[1]
    blended = choice["weight"] * choice["res_mean"] + (1 - choice["weight"]) * choice["api_age"]
    pred = np.clip(choice["bias"] + choice["slope"] * blended, 1.0, 100.0)
    gap = np.abs(choice["res_mean"] - choice["api_age"])
    design = np.stack([np.ones_like(pred), choice["res_std"], gap, pred], axis=1)
    coef = _nonneg_lstsq(design[train], np.abs(pred - true)[train])
    blur_ref = float(np.percentile(quality["sharpness"], 10))
    calibration = AgeCalibration(
        faceres_scale=round(choice["faceres_scale"], 3),
        faceapi_scale=round(choice["faceapi_scale"], 3),
        flip=True,
        faceres_weight=choice["weight"],
        bias=choice["bias"],
        slope=choice["slope"],
        base=float(coef[0]),
        a_std=float(coef[1]),
        a_gap=float(coef[2]),
        a_age=float(coef[3]),
        sigma_scale=1.0,
        blur_ref=blur_ref,
        min_st_dev=1.0,
        **QUALITY_PRIORS,
    )
    factors = np.array(
        [calibration.quality_factor({k: float(v[n]) for k, v in quality.items()}) for n in range(len(true))]
    )
    expected = design @ coef * factors
    # The scale that makes |error| <= st_dev hold for 68% of the training faces: an honest 1-sigma.
    scale = float(np.percentile(np.abs(pred - true)[train] / expected[train], 68.27))
    calibration = replace(calibration, sigma_scale=scale)
    sigma = np.maximum(expected * scale, calibration.min_st_dev)
    report = {
        "choice": {k: v for k, v in choice.items() if not isinstance(v, np.ndarray)},
        "train": summarise(true[train], pred[train], sigma[train]),
        "held_out": summarise(true[test], pred[test], sigma[test]),
        "top": sorted(table, key=lambda r: r["mae"])[:10],
    }
    return calibration, report


def merge_scales(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One feature set from several runs over the same faces at different crop scales."""
    merged = dict(parts[0])
    for part in parts[1:]:
        if not np.array_equal(part["files"], merged["files"]):
            raise ValueError("feature files cover different faces")
        merged["probs"] = np.concatenate([merged["probs"], part["probs"]], axis=2)
        merged["faceapi"] = np.concatenate([merged["faceapi"], part["faceapi"]], axis=2)
        merged["scales"] = np.concatenate([merged["scales"], part["scales"]])
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("features", type=Path, nargs="+", help="features of the same faces")
    parser.add_argument("--write", action="store_true", help=f"write {CALIBRATION_PATH.name}")
    args = parser.parse_args()
    calibration, report = fit(merge_scales([dict(np.load(path)) for path in args.features]))
    print(json.dumps(report, indent=2))
    print(json.dumps(asdict(calibration), indent=2))
    if args.write:
        CALIBRATION_PATH.write_text(json.dumps(asdict(calibration), indent=2) + "\n")
        print(f"written {CALIBRATION_PATH}")


if __name__ == "__main__":
    main()
