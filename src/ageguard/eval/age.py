"""Age accuracy metrics of ../shared/datasets/README.md: MAE per band, gender and race, the
threshold errors that matter for age checks, and whether st_dev is an honest 1-sigma."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-12", 0, 12),
    ("13-17", 13, 17),
    ("18-24", 18, 24),
    ("25-30", 25, 30),
    ("31-49", 31, 49),
    ("50+", 50, 200),
)
GENDERS = {"0": "male", "1": "female"}
RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Other"}


@dataclass(frozen=True, slots=True)
class Label:
    age: int
    gender: str
    race: str
    source: str = ""
    identity: str = ""


@dataclass(frozen=True, slots=True)
class Scored:
    true_age: int
    gender: str
    race: str
    age: float
    st_dev: float
    source: str = ""


def read_labels(path: Path) -> dict[str, Label]:
    """``file,age[,gender,race,source,identity]`` rows (utkface-dev's columns or the age pool's)."""
    with path.open(newline="") as handle:
        return {
            row["file"]: Label(
                int(float(row["age"])),
                row.get("gender") or "",
                row.get("race") or "",
                row.get("source") or "",
                row.get("identity") or "",
            )
            for row in csv.DictReader(handle)
        }


def by_source(rows: Sequence[Scored], failures: dict[str, int]) -> dict[str, Any]:
    """Overall metrics, and each source's own where the labels name more than one."""
    report = metrics(rows, failures)
    sources = sorted({r.source for r in rows if r.source})
    if len(sources) > 1:
        report["sources"] = {s: metrics([r for r in rows if r.source == s], {}) for s in sources}
    return report


def _over_18_pass(pred: np.ndarray, sigma: np.ndarray, mask: np.ndarray) -> float | None:
    """Share of ``mask`` whose estimate passes ``/age-verify`` OVER 18 at the default max_st_dev."""
    from ageguard.api.schemas import age_check
    from ageguard.settings import Settings

    if not mask.any():
        return None
    limit = Settings.model_fields["max_st_dev"].default
    passed = [
        age_check(float(a), float(s), 18, "OVER", limit) == "pass"
        for a, s in zip(pred[mask], sigma[mask], strict=True)
    ]
    return float(np.mean(passed))


def _share(mask: np.ndarray, condition: np.ndarray) -> float | None:
    n = int(mask.sum())
    return float((condition & mask).sum() / n) if n else None


def _group(rows: Sequence[Scored], key: str, names: dict[str, str]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for code, name in names.items():
        errors = [abs(r.age - r.true_age) for r in rows if getattr(r, key) == code]
        if errors:
            out[name] = {"n": len(errors), "mae": float(np.mean(errors))}
    return out


def metrics(rows: Sequence[Scored], failures: dict[str, int]) -> dict[str, Any]:
    truth = np.array([r.true_age for r in rows], dtype=np.float64)
    pred = np.array([r.age for r in rows], dtype=np.float64)
    sigma = np.array([r.st_dev for r in rows], dtype=np.float64)
    err = np.abs(pred - truth)
    bands = {}
    for name, low, high in BANDS:
        mask = (truth >= low) & (truth <= high)
        if mask.any():
            bands[name] = {
                "n": int(mask.sum()),
                "mae": float(err[mask].mean()),
                "coverage_1sd": float((err[mask] <= sigma[mask]).mean()),
                "coverage_2sd": float((err[mask] <= 2 * sigma[mask]).mean()),
                "mean_st_dev": float(sigma[mask].mean()),
            }
    teen = (truth >= 13) & (truth <= 17)
    child = (truth >= 6) & (truth <= 11)
    adult = truth >= 25
    return {
        "n": len(rows),
        "failures": failures,
        "mae": float(err.mean()) if len(rows) else None,
        "median_ae": float(np.median(err)) if len(rows) else None,
        "bands": bands,
        "gender": _group(rows, "gender", GENDERS),
        "race": _group(rows, "race", RACES),
        "share_13_17_estimated_ge_25": _share(teen, pred >= 25),
        "share_13_17_estimated_ge_21": _share(teen, pred >= 21),
        "share_6_11_estimated_ge_13": _share(child, pred >= 13),
        "share_25plus_estimated_lt_25": _share(adult, pred < 25),
        "over_18_pass_31plus": _over_18_pass(pred, sigma, truth >= 31),
        "coverage_1sd": float((err <= sigma).mean()) if len(rows) else None,
        "coverage_2sd": float((err <= 2 * sigma).mean()) if len(rows) else None,
        "mean_st_dev": float(sigma.mean()) if len(rows) else None,
    }


def join(labels: dict[str, Label], results: Iterable[dict[str, Any]]) -> tuple[list[Scored], dict[str, int]]:
    """Match estimate results (``file`` + ``age``/``st_dev`` or ``error_code``) with their labels."""
    rows: list[Scored] = []
    failures: dict[str, int] = {}
    for result in results:
        label = labels.get(Path(result["file"]).name)
        if label is None:
            continue
        if result.get("error_code"):
            failures[result["error_code"]] = failures.get(result["error_code"], 0) + 1
            continue
        rows.append(
            Scored(
                label.age,
                label.gender,
                label.race,
                float(result["age"]),
                float(result["st_dev"]),
                label.source,
            )
        )
    return rows, failures


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown(report: dict[str, Any]) -> str:
    """The metrics table as Markdown, for the terminal and for docs/quality.md."""
    lines = [
        f"faces scored: {report['n']}; failures: {report['failures'] or 'none'}",
        "",
        "| slice | n | MAE | within 1 st_dev | within 2 st_dev | mean st_dev |",
        "|---|---|---|---|---|---|",
        f"| all | {report['n']} | {report['mae']:.2f} | {_pct(report['coverage_1sd'])} "
        f"| {_pct(report['coverage_2sd'])} | {report['mean_st_dev']:.2f} |",
    ]
    for name, cell in report["bands"].items():
        lines.append(
            f"| age {name} | {cell['n']} | {cell['mae']:.2f} | {_pct(cell['coverage_1sd'])} "
            f"| {_pct(cell['coverage_2sd'])} | {cell['mean_st_dev']:.2f} |"
        )
    for section in ("gender", "race"):
        for name, cell in report[section].items():
            lines.append(f"| {section} {name} | {cell['n']} | {cell['mae']:.2f} | | | |")
    lines += [
        "",
        "| threshold error | share |",
        "|---|---|",
        f"| true 13-17 estimated >= 25 | {_pct(report['share_13_17_estimated_ge_25'])} |",
        f"| true 13-17 estimated >= 21 | {_pct(report['share_13_17_estimated_ge_21'])} |",
        f"| true 6-11 estimated >= 13 | {_pct(report['share_6_11_estimated_ge_13'])} |",
        f"| true 25+ estimated < 25 | {_pct(report['share_25plus_estimated_lt_25'])} |",
        f"| \\|error\\| <= st_dev | {_pct(report['coverage_1sd'])} |",
        f"| \\|error\\| <= 2 st_dev | {_pct(report['coverage_2sd'])} |",
        f"| mean st_dev | {report['mean_st_dev']:.2f} |",
        f"| true 31+ passing OVER 18 (max_st_dev default) | {_pct(report['over_18_pass_31plus'])} |",
    ]
    for source, sub in report.get("sources", {}).items():
        lines += ["", f"**source {source}**", "", markdown(sub)]
    return "\n".join(lines) + "\n"
