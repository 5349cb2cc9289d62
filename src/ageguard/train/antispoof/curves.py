"""DET curves of the leave-one-setup-out report, one PNG per source family (ours and the peer's).

Each curve sweeps one threshold over the held-out scores of every fold of the family, pooled (each
image's score comes from the fold model that never saw its source). The marked points are the verdicts
actually given: AgeGuard at each level with its fold's own thresholds (undetermined counted in neither
rate), the peer at its argmax. Axes are on the normal-deviate scale, as DET curves are drawn
(ISO/IEC 30107-3 terms: APCER, attacks accepted; BPCER, live people rejected).

``ageguard train antispoof-curves --report reports/antispoof-cv.json --out docs/`` (needs matplotlib,
the ``[plots]`` or ``[dev]`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

TICKS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95)
_LO, _HI = 0.0005, 0.995


def det_points(
    scores: npt.NDArray[np.float64], real: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(APCER, BPCER) at every threshold (``real`` when score >= threshold)."""
    order = np.argsort(-scores, kind="mergesort")
    s, r = scores[order], real[order]
    n_real, n_att = max(int(r.sum()), 1), max(int((~r).sum()), 1)
    accepted_att = np.cumsum(~r) / n_att  # accepting everything down to each score
    accepted_real = np.cumsum(r) / n_real
    last = np.r_[s[1:] != s[:-1], True]  # one point per distinct score
    apcer = np.r_[0.0, accepted_att[last]]
    bpcer = np.r_[1.0, 1.0 - accepted_real[last]]
    return apcer, bpcer


def _probit(p: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
    inv = NormalDist().inv_cdf
    return np.vectorize(lambda v: inv(min(max(v, _LO), _HI)))(np.asarray(p, dtype=np.float64))


def plot(report: dict[str, Any], out_dir: Path, prefix: str = "antispoof-det") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    written = []
    families = sorted({r["family"] for r in rows})
    for family in families:
        fam = [r for r in rows if r["family"] == family and r["score"] is not None]
        if not fam or all(r["real"] for r in fam) or not any(r["real"] for r in fam):
            continue
        fig, ax = plt.subplots(figsize=(5.6, 5.2), dpi=110)
        real = np.array([r["real"] for r in fam], dtype=bool)
        ours = np.array([r["score"] for r in fam], dtype=np.float64)
        a, b = det_points(ours, real)
        ax.plot(_probit(a), _probit(b), color="tab:blue", label="AgeGuard (pooled held-out scores)")
        peer_rows = [r for r in fam if r["peer_score"] is not None]
        if peer_rows:
            pr = np.array([r["real"] for r in peer_rows], dtype=bool)
            pa, pb = det_points(np.array([r["peer_score"] for r in peer_rows], np.float64), pr)
            ax.plot(_probit(pa), _probit(pb), color="tab:orange", label="MiniFASNetV2 peer")
            rates = report["pooled"][family]["peer"]["all"]
            ax.plot(
                _probit(rates["apcer"]), _probit(rates["bpcer"]), "s", color="tab:orange", label="peer argmax"
            )
        for level, marker in (("low", "v"), ("medium", "o"), ("high", "^")):
            rates = report["pooled"][family]["ours"][level]["all"]
            if rates["apcer"] is not None and rates["bpcer"] is not None:
                label = f"AgeGuard {level} ({100 * rates['undetermined']:.1f}% undetermined)"
                ax.plot(
                    _probit(rates["apcer"]), _probit(rates["bpcer"]), marker, color="tab:blue", label=label
                )
        ticks = _probit(np.array(TICKS))
        labels = [f"{100 * t:g}" for t in TICKS]
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        lo, hi = float(_probit(0.001)), float(_probit(0.95))
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("APCER, attacks accepted (%)")
        ax.set_ylabel("BPCER, live people rejected (%)")
        sources = sorted({r["source"] for r in fam})
        n_live, n_att = int(real.sum()), int((~real).sum())
        ax.set_title(
            f"{family}: {len(sources)} source(s) held out one at a time\n"
            f"{n_live} live, {n_att} attack images",
            fontsize=10,
        )
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        path = out_dir / f"{prefix}-{family}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written


def plot_file(report_path: Path, out_dir: Path) -> list[Path]:
    return plot(json.loads(report_path.read_text()), out_dir)
