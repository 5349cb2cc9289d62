"""The honest figures: leave-one-setup-out over every source (fas-dev's four, NUAA, each webcam setup).

Each fold trains the recipe's head without the held-out source (its frozen-backbone features come from
the per-image cache of :mod:`ageguard.train.antispoof.features`), calibrates its thresholds on the
fold's own validation split (never on the held-out source), and judges the held-out images with them:
the head on the served crops' features is what the exported ONNX file computes (tested), and the
quality gate is the served one. The MiniFASNetV2 peer's score on the same faces comes from the same cache.

UTKFace (live faces only) is never held out. ``ageguard train antispoof-cv`` runs the folds and writes
one JSON report (every image's scores, for the curves) plus markdown tables; the same cache then trains
the shipped model on all sources (``ageguard train antispoof --features``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ageguard.eval import antispoof as ev
from ageguard.train.antispoof.features import FeatureTable
from ageguard.train.antispoof.model import Head
from ageguard.train.antispoof.trainer import (
    Features,
    Log,
    Standardiser,
    TrainConfig,
    TrainResult,
    calibrate,
    roc_auc,
    score_features,
    split_by_subject,
    train_head,
    write_model,
)
from ageguard.vision.liveness.base import LEVELS, DecisionPolicy

FAS_SOURCES = ("AxonData-sample", "CASIA-FASD", "CelebA-Spoof", "Replay-Attack")
NEVER_HELD_OUT = ("UTKFace",)  # live faces only: nothing to measure APCER on


@dataclass
class Fit:
    head: Head
    std: Standardiser
    policy: DecisionPolicy
    validation_auc: float
    train_images: int
    validation_images: int
    validation_sources: dict[str, int]  # validation images per source


def fit(table: FeatureTable, index: npt.NDArray[np.intp], cfg: TrainConfig, log: Log = print) -> Fit:
    """The recipe's head on the images ``index`` (their augmented rows), thresholds from their validation
    split (subject-disjoint within a source; whole setups for single-setup sources)."""
    samples = [table.samples[i] for i in index]
    tr, va = split_by_subject(samples, cfg.val_share, cfg.seed)
    train_img, val_img = index[np.asarray(tr, dtype=np.intp)], index[np.asarray(va, dtype=np.intp)]
    rows = np.isin(table.aug.sample, train_img)
    feats = Features(
        table.aug.x[rows], table.aug.real[rows], table.aug.synthetic[rows], table.aug.sample[rows]
    )
    head, std = train_head(feats, table.samples, cfg, log)
    labels = np.array([table.samples[i].real for i in val_img], dtype=np.float32)
    scores = score_features(head, std, table.clean[val_img]) if len(val_img) else np.zeros(0, np.float32)
    counts: dict[str, int] = {}
    for i in val_img:
        counts[table.samples[i].source] = counts.get(table.samples[i].source, 0) + 1
    return Fit(
        head,
        std,
        calibrate(scores, labels, cfg),
        roc_auc(scores, labels),
        len(train_img),
        len(val_img),
        dict(sorted(counts.items())),
    )


def held_out_sources(table: FeatureTable) -> list[str]:
    """Every source but UTKFace, fas-dev's and NUAA first, then the other folders' setups."""
    family = {s.source: s.family for s in table.samples + table.no_face}
    order = {"fas-dev": 0, "nuaa-dev": 1}
    return sorted(
        (s for s in family if s not in NEVER_HELD_OUT), key=lambda s: (order.get(family[s], 2), family[s], s)
    )


def _rows(
    table: FeatureTable, source: str, scores: npt.NDArray[np.float32], ok: npt.NDArray[np.bool_]
) -> list[ev.Row]:
    rows = []
    held = [i for i, s in enumerate(table.samples) if s.source == source]
    for k, i in enumerate(held):
        s = table.samples[i]
        peer = float(table.peer_score[i])
        rows.append(
            ev.Row(
                s.key,
                s.real,
                s.attack,
                s.source,
                s.subject,
                score=float(scores[k]),
                quality_ok=bool(ok[i]),
                peer_score=None if np.isnan(peer) else peer,
                peer_real=None if np.isnan(peer) else bool(table.peer_real[i]),
            )
        )
    rows += [
        ev.Row(s.key, s.real, s.attack, s.source, s.subject) for s in table.no_face if s.source == source
    ]
    return rows


def run_folds(
    table: FeatureTable,
    cfg: TrainConfig,
    only: Callable[[str], bool] = lambda _: True,
    log: Log = print,
) -> dict[str, Any]:
    """Leave-one-source-out over ``table``; the report's ``rows`` hold every held-out image's scores."""
    report: dict[str, Any] = {"config": _config(cfg), "folds": {}, "rows": []}
    family = {s.source: s.family for s in table.samples + table.no_face}
    policies: dict[str, DecisionPolicy] = {}
    all_rows: list[ev.Row] = []
    for source in held_out_sources(table):
        if not only(source):
            continue
        start = time.monotonic()
        index = np.array([i for i, s in enumerate(table.samples) if s.source != source], dtype=np.intp)
        model = fit(table, index, cfg, log=lambda _: None)
        held = np.array([i for i, s in enumerate(table.samples) if s.source == source], dtype=np.intp)
        scores = (
            score_features(model.head, model.std, table.clean[held]) if len(held) else np.zeros(0, np.float32)
        )
        rows = _rows(table, source, scores, table.quality_ok(model.policy.quality))
        metrics = ev.metrics(rows, model.policy)
        metrics |= {
            "family": family[source],
            "policy": model.policy.to_json(),
            "validation_auc": model.validation_auc,
            "validation_sources": model.validation_sources,
            "train_images": model.train_images,
            "seconds": round(time.monotonic() - start, 1),
        }
        report["folds"][source] = metrics
        policies[source] = model.policy
        all_rows += rows
        o, p = metrics["ours"]["medium"]["all"], metrics.get("peer", {}).get("all", {})
        log(
            f"{source}: medium APCER {_p(o['apcer'])} BPCER {_p(o['bpcer'])} ACER {_p(o['acer'])} "
            f"undetermined {_p(o['undetermined'])} (peer ACER {_p(p.get('acer'))}; "
            f"{metrics['seconds']:.0f} s)"
        )
    report["pooled"] = {}
    for fam in sorted({family[s] for s in policies}):
        rows = [r for r in all_rows if family[r.source] == fam]
        report["pooled"][fam] = pooled(rows, policies)
    report["rows"] = [asdict(r) | {"family": family[r.source]} for r in all_rows]
    return report


def pooled(rows: Sequence[ev.Row], policies: dict[str, DecisionPolicy]) -> dict[str, Any]:
    """Rates over the rows of several folds, each judged by its own fold's thresholds."""
    out: dict[str, Any] = {"images": len(rows), "no_face": sum(r.score is None for r in rows)}
    scored = [r for r in rows if r.score is not None]
    real = np.array([r.real for r in scored], dtype=bool)
    ours: dict[str, Any] = {}
    for level in LEVELS:
        preds = [
            "undetermined"
            if not r.quality_ok
            else policies[r.source].levels[level].decide(float(r.score or 0))
            for r in scored
        ]
        ours[level] = {"all": ev.rates(real, preds)}
        ours[level]["all"]["auc"] = ev.roc_auc(np.array([r.score for r in scored], dtype=np.float64), real)
    out["ours"] = ours
    peer_rows = [r for r in rows if r.peer_score is not None]
    peer_real = np.array([r.real for r in peer_rows], dtype=bool)
    out["peer"] = {"all": ev.rates(peer_real, ["real" if r.peer_real else "fake" for r in peer_rows])}
    out["peer"]["all"]["auc"] = ev.roc_auc(np.array([r.peer_score for r in peer_rows], np.float64), peer_real)
    per_source_bpcer = {}
    for source in sorted({r.source for r in scored}):
        sub = [r for r in scored if r.source == source and r.real]
        if sub:
            medium = policies[source].levels["medium"]
            rejected = sum(r.quality_ok and medium.decide(float(r.score or 0)) == "fake" for r in sub)
            per_source_bpcer[source] = rejected / len(sub)
    out["max_setup_bpcer_medium"] = max(per_source_bpcer.values(), default=None)
    return out


def train_final(table: FeatureTable, out_dir: Path, cfg: TrainConfig, log: Log = print) -> TrainResult:
    """The shipped model: the same recipe on every image of the table."""
    start = time.monotonic()
    index = np.arange(len(table.samples), dtype=np.intp)
    model = fit(table, index, cfg, log)
    info = {
        "images": len(table.samples),
        "train_images": model.train_images,
        "validation_images": model.validation_images,
        "validation_sources": model.validation_sources,
        "validation_auc": round(model.validation_auc, 5),
        "sources": sorted({s.source for s in table.samples}),
    }
    result = write_model(out_dir, model.head, model.std, model.policy, cfg, info, start)
    log(f"validation AUC {model.validation_auc:.4f}; wrote {result.onnx} and {result.policy_json}")
    return result


def _config(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if k != "quality"}


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report) + "\n")


def _p(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _a(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _cell(a: dict[str, Any]) -> str:
    return f"{_p(a['apcer'])} / {_p(a['bpcer'])} / **{_p(a['acer'])}** / {_p(a['undetermined'])}"


def _peer_cell(p: dict[str, Any]) -> str:
    return f"{_p(p.get('apcer'))} / {_p(p.get('bpcer'))} / **{_p(p.get('acer'))}**"


def markdown(report: dict[str, Any]) -> str:
    """Per held-out source, each level's APCER / BPCER / ACER / undetermined, the peer beside; pooled per
    family; then the attack types at ``medium``."""
    head = (
        "| held out | live / attacks | low | medium | high | AUC | MiniFASNetV2 (argmax) | peer AUC |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    lines = [
        "Each cell: APCER / BPCER / **ACER** / undetermined (the peer has no undetermined).",
        "",
        head,
    ]
    for source, m in report["folds"].items():
        ours, peer = m["ours"], m.get("peer", {}).get("all", {})
        a = ours["medium"]["all"]
        lines.append(
            f"| {source} ({m.get('family', '')}) | {a['n_bona_fide']} / {a['n_attack']} "
            f"| {_cell(ours['low']['all'])} | {_cell(a)} | {_cell(ours['high']['all'])} | {_a(a['auc'])} "
            f"| {_peer_cell(peer)} | {_a(peer.get('auc'))} |"
        )
    lines += [
        "",
        "Pooled per family (every image judged by the fold model that never saw its source, with that fold's "
        "thresholds):",
        "",
        head.replace("held out", "family"),
    ]
    for fam, m in report.get("pooled", {}).items():
        ours, peer = m["ours"], m["peer"]["all"]
        a = ours["medium"]["all"]
        lines.append(
            f"| {fam} | {a['n_bona_fide']} / {a['n_attack']} | {_cell(ours['low']['all'])} | {_cell(a)} "
            f"| {_cell(ours['high']['all'])} | {_a(a['auc'])} | {_peer_cell(peer)} | {_a(peer.get('auc'))} |"
        )
    lines += [
        "",
        "Per attack type (held-out fold; AgeGuard at `medium`, the peer at argmax; APCER, lower is better):",
        "",
        "| held out | attack type | n | AgeGuard APCER | AgeGuard undetermined | MiniFASNetV2 APCER |",
        "|---|---|---|---|---|---|",
    ]
    for source, m in report["folds"].items():
        for key, o in m["ours"]["medium"].items():
            if key.startswith("attack:"):
                p = m.get("peer", {}).get(key, {})
                lines.append(
                    f"| {source} | {key[7:]} | {o['n_attack']} | {_p(o['apcer'])} | {_p(o['undetermined'])} "
                    f"| {_p(p.get('apcer'))} |"
                )
    return "\n".join(lines) + "\n"


def acceptance(report: dict[str, Any], family: str = "webcam") -> str:
    """The issue's acceptance lines, measured."""
    lines = []
    pooled_family = report.get("pooled", {}).get(family)
    if pooled_family:
        a = pooled_family["ours"]["medium"]["all"]
        worst = pooled_family.get("max_setup_bpcer_medium")
        lines.append(
            f"{family} pooled at medium: ACER {_p(a['acer'])} (target <= 6%), "
            f"BPCER {_p(a['bpcer'])} (<= 4%), "
            f"undetermined {_p(a['undetermined'])} (<= 8%), worst setup BPCER {_p(worst)} (<= 15%)"
        )
    for source, m in report["folds"].items():
        if m.get("family") in ("fas-dev", "nuaa-dev"):
            ours, peer = m["ours"]["medium"]["all"]["acer"], m.get("peer", {}).get("all", {}).get("acer")
            verdict = "met" if ours is not None and peer is not None and ours <= peer else "not met"
            lines.append(f"{source} held out: ACER {_p(ours)} vs the peer's {_p(peer)} ({verdict})")
    return "\n".join(lines) + "\n"
