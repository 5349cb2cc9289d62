"""The honest figures: leave-one-source-out on fas-dev and leave-subjects-out on nuaa-dev.

Each fold trains the full recipe without the held-out source (or subjects), then scores the held-out
images through the served path (detector, crops, ONNX model, decision per level), the peer beside it.
``ageguard train antispoof-cv`` runs them all and writes one JSON report plus markdown tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ageguard.eval import antispoof as ev
from ageguard.train.antispoof.data import Detect, main_face
from ageguard.train.antispoof.trainer import Log, TrainConfig, run
from ageguard.vision.types import Face, RGBImage

FAS_SOURCES = ("AxonData-sample", "CASIA-FASD", "CelebA-Spoof", "Replay-Attack")
NUAA_FOLDS = (("0001", "0002", "0003"), ("0004", "0005", "0006", "0007"))


def cached(detect: Detect, cache: dict[bytes, list[Face]]) -> Detect:
    """The detector, remembered per image content (folds score the same images again and again)."""

    def wrapped(image: RGBImage) -> list[Face]:
        key = image[::7, ::7].tobytes() + bytes(str(image.shape), "ascii")
        if key not in cache:
            face = main_face(detect(image))
            cache[key] = [face] if face is not None else []
        return cache[key]

    return wrapped


def folds() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, dataset folder, TrainConfig overrides)."""
    out: list[tuple[str, str, dict[str, Any]]] = [
        (f"fas-dev minus {s}", "fas-dev", {"exclude_sources": (s,)}) for s in FAS_SOURCES
    ]
    for subjects in NUAA_FOLDS:
        name = f"nuaa-dev subjects {','.join(subjects)}"
        out.append((name, "nuaa-dev", {"exclude_subjects": tuple(f"NUAA:{s}" for s in subjects)}))
    return out


def run_folds(
    root: Path,
    work: Path,
    cfg: TrainConfig,
    detect: Detect,
    box_cache: Path | None = None,
    only: Callable[[str], bool] = lambda _: True,
    log: Log = print,
) -> dict[str, Any]:
    detect = cached(detect, {})
    peer = ev.find_peer()
    report: dict[str, Any] = {"folds": {}}
    pooled: dict[str, list[ev.Row]] = {"fas-dev": [], "nuaa-dev": []}
    for name, dataset, overrides in folds():
        if not only(name):
            continue
        log(f"== {name}")
        fold_cfg = replace(cfg, **overrides)
        model_dir = work / name.replace(" ", "_").replace(",", "-")
        result = run(root, model_dir, fold_cfg, detect, box_cache, log)
        labels = ev.read_labels(root / dataset / "labels.csv")
        if dataset == "fas-dev":
            labels = [lb for lb in labels if lb.source in fold_cfg.exclude_sources]
        else:
            held = {s.split(":", 1)[1] for s in fold_cfg.exclude_subjects}
            labels = [replace(lb, source="NUAA") for lb in labels if lb.subject in held]
        rows, policy, timings = ev.score_images(
            root / dataset / "images", labels, model_dir=model_dir, peer_path=peer, detect=detect
        )
        metrics = ev.metrics(rows, policy)
        metrics["ms_per_face"] = timings
        metrics["validation_auc"] = result.val_auc
        metrics["train_seconds"] = result.seconds
        metrics["policy"] = policy.to_json() if policy else None
        report["folds"][name] = metrics
        pooled[dataset] += rows
        log(ev.markdown(metrics))
    # Pooled over the folds of each set: every image scored by a model that never saw its source/subject.
    # Each fold keeps its own thresholds; the pooled table counts their verdicts.
    report["pooled"] = {}
    for dataset, rows in pooled.items():
        if rows:
            report["pooled"][dataset] = _pooled(rows, report, dataset)
    return report


def _pooled(rows: list[ev.Row], report: dict[str, Any], dataset: str) -> dict[str, Any]:
    # Verdicts were made per fold with that fold's policy: recompute them per row from the fold policies.
    from ageguard.vision.liveness.base import DecisionPolicy

    policies = {
        name: DecisionPolicy.from_json(m["policy"]) for name, m in report["folds"].items() if m.get("policy")
    }
    by_row: dict[int, DecisionPolicy] = {}
    for name, _, overrides in folds():
        if name not in policies:
            continue
        for k, r in enumerate(rows):
            if dataset == "fas-dev" and r.source in overrides.get("exclude_sources", ()):
                by_row[k] = policies[name]
            if dataset == "nuaa-dev" and f"NUAA:{r.subject}" in overrides.get("exclude_subjects", ()):
                by_row[k] = policies[name]
    out: dict[str, Any] = {"images": len(rows), "no_face": sum(r.score is None for r in rows)}
    ours: dict[str, Any] = {}
    for level in ("low", "medium", "high"):
        preds, real = [], []
        for k, r in enumerate(rows):
            if r.score is None or k not in by_row:
                continue
            pred = "undetermined" if not r.quality_ok else by_row[k].levels[level].decide(r.score)
            preds.append(pred)
            real.append(r.real)
        ours[level] = {"all": ev.rates(np.array(real, dtype=bool), preds)}
    out["ours"] = ours
    peer_rows = [r for r in rows if r.peer_score is not None]
    out["peer"] = {
        "all": ev.rates(
            np.array([r.real for r in peer_rows], bool),
            ["real" if r.peer_real else "fake" for r in peer_rows],
        )
    }
    return out


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")


def _p(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _a(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def markdown(report: dict[str, Any]) -> str:
    """The tables of docs/quality.md: per fold and level (ours, then the peer), pooled, per attack type."""
    lines = [
        "| held out | model | level | APCER | BPCER | ACER | undetermined | ROC AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["folds"].items():
        for level in ("low", "medium", "high"):
            a = m["ours"][level]["all"]
            lines.append(
                f"| {name} | AgeGuard | {level} | {_p(a['apcer'])} | {_p(a['bpcer'])} | {_p(a['acer'])} "
                f"| {_p(a['undetermined'])} | {_a(a['auc'])} |"
            )
        p = m["peer"]["all"]
        lines.append(
            f"| {name} | MiniFASNetV2 | argmax | {_p(p['apcer'])} | {_p(p['bpcer'])} | {_p(p['acer'])} "
            f"| - | {_a(p['auc'])} |"
        )
    lines += [
        "",
        "Pooled over the folds of each set (each image judged by the fold model that never saw its source or "
        "subject, with that fold's thresholds):",
        "",
        "| set | model | level | APCER | BPCER | ACER | undetermined |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, m in report.get("pooled", {}).items():
        for level in ("low", "medium", "high"):
            a = m["ours"][level]["all"]
            lines.append(
                f"| {dataset} | AgeGuard | {level} | {_p(a['apcer'])} | {_p(a['bpcer'])} | {_p(a['acer'])} "
                f"| {_p(a['undetermined'])} |"
            )
        p = m["peer"]["all"]
        peer_cells = f"{_p(p['apcer'])} | {_p(p['bpcer'])} | {_p(p['acer'])}"
        lines.append(f"| {dataset} | MiniFASNetV2 | argmax | {peer_cells} | - |")
    lines += [
        "",
        "Per attack type (held-out fold; AgeGuard at `medium`, the peer at argmax; APCER, lower is better):",
        "",
        "| held out | attack type | n | AgeGuard APCER | AgeGuard undetermined | MiniFASNetV2 APCER |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in report["folds"].items():
        for key, o in m["ours"]["medium"].items():
            if not key.startswith("attack:"):
                continue
            p = m["peer"].get(key, {})
            lines.append(
                f"| {name} | {key[7:]} | {o['n_attack']} | {_p(o['apcer'])} | {_p(o['undetermined'])} "
                f"| {_p(p.get('apcer'))} |"
            )
    ms = [m.get("ms_per_face", {}) for m in report["folds"].values()]
    if ms:
        ours = float(np.median([x[ev.OURS_NAME] for x in ms if ev.OURS_NAME in x]))
        peer = float(np.median([x[ev.PEER_NAME] for x in ms if ev.PEER_NAME in x]))
        lines += [
            "",
            f"Median ms per face (crop + network, one thread): AgeGuard {ours:.2f}, MiniFASNetV2 {peer:.2f}.",
        ]
    return "\n".join(lines) + "\n"
