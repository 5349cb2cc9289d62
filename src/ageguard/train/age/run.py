"""One training run of the age head: features (cached), variants on the validation parts, the chosen
head exported with its st_dev line, and the per-source report of the parts nobody trained on or chose by."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ageguard.eval import age as age_eval
from ageguard.train.age.features import collect, read_labels
from ageguard.train.age.probe import minor_separability, network_ages, network_bands
from ageguard.train.age.trainer import (
    Head,
    Pool,
    Recipe,
    fit_st_dev,
    moments,
    quality_factors,
    sample_weights,
    splits,
    train_head,
    write,
)
from ageguard.vision.age.estimator import QualityPriors, StDevLine

Log = Callable[[str], None]

# The variants a --compare run measures; the first is the shipped recipe unless the numbers say otherwise.
VARIANTS: dict[str, Recipe] = {
    "mlp256-teen2": Recipe(),
    "mlp256-teen4": Recipe(teen_boost=4.0),
    "linear-teen2": Recipe(hidden=0, dropout=0.0),
}


@dataclass(frozen=True)
class RunResult:
    onnx: Path
    variant: str
    report: dict[str, Any]


def pool_features(pool_dir: Path, cache: Path, sources: list[str] | None, log: Log) -> list[Path]:
    """Feature files for each source of a pool folder (images/ + labels.csv with a ``source`` column)."""
    labels = pool_dir / "labels.csv"
    rows = read_labels(labels, default_source="pool")
    by_source: dict[str, list[Any]] = {}
    for row in rows:
        by_source.setdefault(row.source, []).append(row)
    split_dir = cache / "labels"
    split_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for source in sorted(by_source):
        if sources and source not in sources:
            continue
        part = split_dir / f"{source}.csv"
        with part.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "age", "gender", "race", "source", "identity"])
            for r in by_source[source]:
                writer.writerow([r.file, r.age, r.gender, r.race, r.source, r.identity])
        log(f"features of {source} ({len(by_source[source])} images; cached in {cache})")
        out.append(collect(pool_dir / "images", part, cache, source))
    return out


def predict(head: Head, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    return moments(head.probs(pool.x))


def baseline_ages(pool: Pool) -> np.ndarray:
    """The plain mean of the two networks (faceres-deep's distribution mean and face-api's age)."""
    return network_ages(pool)["mean"]


def selection_score(report: dict[str, Any]) -> float:
    """Lower is better: overall MAE, plus the teen and young-adult bands the age check hinges on."""
    bands = report["bands"]
    teen = bands.get("13-17", {}).get("mae", 0.0)
    young = bands.get("18-24", {}).get("mae", 0.0)
    over25 = report["share_13_17_estimated_ge_25"] or 0.0
    return float(report["mae"] + 0.5 * teen + 0.5 * young + 20.0 * over25)


def score_rows(pool: Pool, age: np.ndarray, st_dev: np.ndarray) -> list[age_eval.Scored]:
    return [
        age_eval.Scored(int(t), str(g) if g >= 0 else "", str(r) if r >= 0 else "", float(a), float(s))
        for t, g, r, a, s in zip(pool.age, pool.gender, pool.race, age, st_dev, strict=True)
    ]


def per_source(pool: Pool, age: np.ndarray, st_dev: np.ndarray) -> dict[str, Any]:
    out = {"all": age_eval.metrics(score_rows(pool, age, st_dev), {})}
    for source in sorted(set(pool.source.tolist())):
        mask = pool.source == source
        out[source] = age_eval.metrics(score_rows(pool.take(mask), age[mask], st_dev[mask]), {})
    return out


def st_devs(line: StDevLine, age: np.ndarray, spread: np.ndarray, factor: np.ndarray) -> np.ndarray:
    return np.array(
        [line.st_dev(float(a), float(s), float(f)) for a, s, f in zip(age, spread, factor, strict=True)]
    )


def load_pool(
    pool_dir: Path, eval_dirs: dict[str, Path], cache: Path, sources: list[str] | None, log: Log
) -> Pool:
    """The pool's and the evaluation sets' features (computed once, then read from ``cache``)."""
    feature_files = pool_features(pool_dir, cache, sources, log)
    for name, folder in eval_dirs.items():
        log(f"features of {name} (evaluation only)")
        feature_files.append(collect(folder / "images", folder / "labels.csv", cache, name))
    return Pool.load(feature_files)


def probe(
    pool_dir: Path,
    eval_dirs: dict[str, Path],
    cache: Path,
    log: Log = print,
    sources: list[str] | None = None,
) -> dict[str, Any]:
    """``--probe``: each network's error per band (all faces: nothing is fitted), and whether the
    features separate minors from adults better than the age does (fitted on the training parts,
    judged on the rest)."""
    pool = load_pool(pool_dir, eval_dirs, cache, sources, log)
    part = splits(pool)
    return {
        "bands": network_bands(pool),
        "separability": minor_separability(pool.take(part == "train"), pool.take(part != "train")),
    }


def run(
    pool_dir: Path,
    eval_dirs: dict[str, Path],
    cache: Path,
    out_dir: Path,
    seed: int,
    compare: bool,
    log: Log = print,
    sources: list[str] | None = None,
    epochs: int | None = None,
) -> RunResult:
    pool = load_pool(pool_dir, eval_dirs, cache, sources, log)
    part = splits(pool)
    train, val, test = (pool.take(part == p) for p in ("train", "val", "test"))
    log(f"{len(train)} faces to train on, {len(val)} to choose by, {len(test)} reported only")
    priors = QualityPriors()
    variants = VARIANTS if compare else {"mlp256-teen2": VARIANTS["mlp256-teen2"]}
    table: dict[str, Any] = {}
    base = baseline_ages(val)
    table["mean of the two networks"] = {"val": per_source(val, base, np.ones_like(base))}
    best: tuple[float, str, Head, Recipe] | None = None
    for name, recipe in variants.items():
        if epochs is not None:
            recipe = replace(recipe, epochs=epochs)
        log(f"variant {name}: {asdict(recipe)}")
        head = train_head(train, recipe, seed, log)
        age, spread = predict(head, val)
        report = per_source(val, age, spread)
        score = selection_score(report["all"])
        table[name] = {"val": report, "score": score}
        log(f"  validation: MAE {report['all']['mae']:.2f}, score {score:.3f}")
        if best is None or score < best[0]:
            best = (score, name, head, recipe)
    assert best is not None
    _, chosen, head, recipe = best
    age, spread = predict(head, val)
    line = fit_st_dev(
        val.age.astype(np.float64), age, spread, quality_factors(val, priors),
        sample_weights(val, 1.0).astype(np.float64),
    )  # fmt: skip
    onnx_path = write(out_dir, head, line, recipe, seed)
    t_age, t_spread = predict(head, test)
    t_sd = st_devs(line, t_age, t_spread, quality_factors(test, priors))
    b_age = baseline_ages(test)
    report = {
        "chosen": chosen,
        "seed": seed,
        "counts": {"train": len(train), "val": len(val), "test": len(test)},
        "test": per_source(test, t_age, t_sd),
        "test_baseline_mean_of_networks": per_source(test, b_age, np.ones_like(b_age)),
        "variants": {k: {"score": v.get("score"), "val_all": v["val"]["all"]} for k, v in table.items()},
    }
    log(f"chosen: {chosen}; wrote {onnx_path}")
    return RunResult(onnx_path, chosen, report)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def markdown(report: dict[str, Any]) -> str:
    """The variants on validation, then the chosen head per source on the test parts, as Markdown."""
    lines = [
        "| variant (validation parts) | MAE | 13-17 | 18-24 | 13-17 >= 25 | score |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in report["variants"].items():
        a = v["val_all"]
        score = "-" if v["score"] is None else f"{v['score']:.3f}"
        lines.append(
            f"| {name} | {a['mae']:.2f} | {_band(a, '13-17')} | {_band(a, '18-24')} "
            f"| {_pct(a['share_13_17_estimated_ge_25'])} | {score} |"
        )
    lines += ["", f"chosen: {report['chosen']}", ""]
    for title, key in (
        ("chosen head", "test"),
        ("mean of the two networks", "test_baseline_mean_of_networks"),
    ):
        lines += [f"**{title}, unseen test parts**", ""]
        lines.append("| source | n | MAE | " + " | ".join(b for b, _, _ in age_eval.BANDS)
                     + " | 13-17 >= 21 | 13-17 >= 25 | 25+ < 25 | 1 sd | 2 sd |")  # fmt: skip
        lines.append("|---" * (4 + len(age_eval.BANDS) + 5) + "|")
        for source, r in report[key].items():
            lines.append(
                f"| {source} | {r['n']} | {r['mae']:.2f} | "
                + " | ".join(_band(r, b) for b, _, _ in age_eval.BANDS)
                + f" | {_pct(r['share_13_17_estimated_ge_21'])} | {_pct(r['share_13_17_estimated_ge_25'])}"
                f" | {_pct(r['share_25plus_estimated_lt_25'])} | {_pct(r['coverage_1sd'])}"
                f" | {_pct(r['coverage_2sd'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def _band(report: dict[str, Any], band: str) -> str:
    cell = report["bands"].get(band)
    return "-" if cell is None else f"{cell['mae']:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
