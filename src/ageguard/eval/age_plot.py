"""Estimated against true age, one colour per source, with the Challenge-25 lines: the picture of an age
check. ``ageguard eval age ... --plot docs/age-estimates.png`` writes it (needs matplotlib, the dev extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ageguard.eval.age import Scored

CHALLENGE_AGE = 25  # a Challenge-25 policy asks for ID from anyone who looks under 25
LEGAL_AGE = 18


def plot_estimates(rows: Sequence[Scored], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6.5), dpi=110)
    sources = sorted({r.source for r in rows}) or [""]
    for source in sources:
        sel = [r for r in rows if r.source == source]
        ax.scatter(
            [r.true_age for r in sel],
            [r.age for r in sel],
            s=4,
            alpha=0.35,
            label=source or None,
            linewidths=0,
        )
    truth = np.array([r.true_age for r in rows], np.float64)
    pred = np.array([r.age for r in rows], np.float64)
    edges = np.arange(0, 101, 5)
    centres, medians = [], []
    for low in edges[:-1]:
        mask = (truth >= low) & (truth < low + 5)
        if mask.sum() >= 5:
            centres.append(low + 2.5)
            medians.append(float(np.median(pred[mask])))
    ax.plot(centres, medians, color="black", lw=1.6, label="median estimate per 5 years")
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls=":")
    ax.axhline(CHALLENGE_AGE, color="tab:red", lw=1.0, ls="--", label="Challenge 25")
    ax.axvline(LEGAL_AGE, color="tab:red", lw=0.8, ls=":")
    teen = (truth >= 13) & (truth <= 17)
    if teen.any():
        share = float((pred[teen] >= CHALLENGE_AGE).mean())
        ax.text(2, 92, f"true 13-17 estimated >= 25: {100 * share:.1f}% of {int(teen.sum())}", fontsize=9)
    ax.set(
        xlim=(0, 100), ylim=(0, 100), xlabel="true age (years)", ylabel="estimated age (years)", title=title
    )
    ax.legend(loc="lower right", fontsize=8, markerscale=3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
