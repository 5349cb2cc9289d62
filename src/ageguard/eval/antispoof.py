"""Anti-spoofing metrics (ISO/IEC 30107-3 terms) of AgeGuard's liveness model, with the peer beside it.

For each labelled image: the product's detector finds the main (largest) face; AgeGuard's model gives
a score and a verdict per level_of_assurance; with ``peer`` the MiniFASNetV2 peer model from
``../shared/peers`` runs on the same face with its own crop and decision (argmax), for comparison only.

* APCER: share of attacks accepted as ``real``; BPCER: share of live faces called ``fake``;
  ACER = (APCER + BPCER) / 2. ``undetermined`` verdicts count in neither and are reported as their own
  share (a client retakes the picture).
* Tables per level, per source (where the labels have a ``source`` column), per attack type, and the
  ROC AUC of the scores.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image

from ageguard.vision.liveness.base import LEVELS, DecisionPolicy, FaceQuality
from ageguard.vision.liveness.crops import scaled_box
from ageguard.vision.types import Face, RGBImage

PEER_FILE = "MiniFASNetV2_2.7_80x80.onnx"
PEER_NAME = "MiniFASNetV2 (peer)"
OURS_NAME = "AgeGuard"
# The words a labels.csv may use for its classes, here and in training (which refuses any other word,
# so that a typo does not become an attack).
REAL_LABELS = ("real", "live", "bonafide", "1")
FAKE_LABELS = ("fake", "spoof", "attack", "0")


# ---------------------------------------------------------------- labels and results


@dataclass(frozen=True, slots=True)
class Label:
    file: str
    real: bool
    attack: str
    source: str
    subject: str


def read_labels(path: Path) -> list[Label]:
    def is_real(row: dict[str, str]) -> bool:
        return row["label"].strip().lower() in REAL_LABELS

    with path.open(newline="") as fh:
        return [
            Label(
                row["file"],
                is_real(row),
                row.get("attack_type") or ("none" if is_real(row) else "attack"),
                row.get("source") or path.parent.name,
                row.get("subject") or "",
            )
            for row in csv.DictReader(fh)
        ]


@dataclass
class Row:
    """One labelled image and what each model made of it (None: no face found)."""

    file: str
    real: bool
    attack: str
    source: str
    subject: str
    score: float | None = None
    quality_ok: bool = True
    peer_score: float | None = None
    peer_real: bool | None = None


# ---------------------------------------------------------------- the peer


def find_peer(explicit: Path | None = None) -> Path:
    """The peer ONNX file: ``explicit``, else ``shared/peers`` beside the checkout or the working dir."""
    if explicit is not None:
        return explicit
    repo = Path(__file__).resolve().parents[3]
    for base in (
        repo.parent / "shared",
        repo / "shared",
        Path.cwd().parent / "shared",
        Path.cwd() / "shared",
    ):
        candidate = base / "peers" / PEER_FILE
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"peer model {PEER_FILE} not found under ../shared/peers")


class Peer:
    """MiniFASNetV2 2.7 80x80 as its README describes it: BGR 0..255, softmax, class 1 = real."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    @staticmethod
    def crop(image: Image.Image, face: Face) -> npt.NDArray[np.float32]:
        region = scaled_box(image.width, image.height, face.box, 2.7)
        # The reference crops whole pixels (OpenCV): round the box as it does.
        left, top = int(region[0]), int(region[1])
        right, bottom = int(region[2]), int(region[3])
        patch = image.crop((left, top, right + 1, bottom + 1)).resize((80, 80), Image.Resampling.BILINEAR)
        return np.asarray(patch, dtype=np.float32)[:, :, ::-1].transpose(2, 0, 1)[None].copy()

    def predict(self, image: Image.Image, face: Face) -> tuple[float, bool]:
        logits = self.session.run(None, {self.input: self.crop(image, face)})[0][0]
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        return float(prob[1]), int(np.argmax(prob)) == 1


# ---------------------------------------------------------------- metrics


def _rate(mask: npt.NDArray[np.bool_], hit: npt.NDArray[np.bool_]) -> float | None:
    n = int(mask.sum())
    return float((hit & mask).sum() / n) if n else None


def roc_auc(scores: npt.NDArray[np.float64], real: npt.NDArray[np.bool_]) -> float | None:
    """Probability that a live face scores above an attack (ties count half)."""
    pos, neg = scores[real], scores[~real]
    if not len(pos) or not len(neg):
        return None
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    sorted_v = allv[order]
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    for f, c in zip(first, counts, strict=True):
        if c > 1:
            ranks[order[f : f + c]] = ranks[order[f : f + c]].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def rates(real: npt.NDArray[np.bool_], pred: Sequence[str]) -> dict[str, Any]:
    p = np.asarray(pred)
    attack = ~real
    apcer = _rate(attack, p == "real")
    bpcer = _rate(real, p == "fake")
    acer = None if apcer is None or bpcer is None else (apcer + bpcer) / 2
    return {
        "n_attack": int(attack.sum()),
        "n_bona_fide": int(real.sum()),
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": acer,
        "undetermined": _rate(np.ones_like(real), p == "undetermined"),
        "undetermined_bona_fide": _rate(real, p == "undetermined"),
        "undetermined_attack": _rate(attack, p == "undetermined"),
    }


Decide = Callable[[Row], str]


def _summary(rows: Sequence[Row], decide: Decide, score: Callable[[Row], float | None]) -> dict[str, Any]:
    scored = [r for r in rows if score(r) is not None]
    real = np.array([r.real for r in scored], dtype=bool)
    out = rates(real, [decide(r) for r in scored])
    out["auc"] = roc_auc(np.array([score(r) for r in scored], dtype=np.float64), real)
    return out


def _breakdown(
    rows: Sequence[Row], decide: Decide, score: Callable[[Row], float | None]
) -> dict[str, dict[str, Any]]:
    scored = [r for r in rows if score(r) is not None]
    out: dict[str, dict[str, Any]] = {"all": _summary(scored, decide, score)}
    for source in sorted({r.source for r in scored}):
        out[f"source:{source}"] = _summary([r for r in scored if r.source == source], decide, score)
    for attack in sorted({r.attack for r in scored if not r.real}):
        subset = [r for r in scored if not r.real and r.attack == attack]
        out[f"attack:{attack}"] = _summary(subset, decide, score)
    return out


def metrics(rows: Sequence[Row], policy: DecisionPolicy | None) -> dict[str, Any]:
    """Every table, for AgeGuard per level and for the peer (its own argmax decision), if present."""
    result: dict[str, Any] = {
        "images": len(rows),
        "no_face": sum(r.score is None and r.peer_score is None for r in rows),
    }
    if policy is not None:
        ours = {}
        for level in LEVELS:

            def decide(r: Row, level: Any = level) -> str:
                assert r.score is not None and policy is not None
                if not r.quality_ok:
                    return "undetermined"
                return policy.levels[level].decide(r.score)

            ours[level] = _breakdown(rows, decide, lambda r: r.score)
        result["ours"] = ours
    if any(r.peer_score is not None for r in rows):
        result["peer"] = _breakdown(rows, lambda r: "real" if r.peer_real else "fake", lambda r: r.peer_score)
    return result


# ---------------------------------------------------------------- scoring the images


def score_images(
    image_dir: Path,
    labels: Iterable[Label],
    *,
    model_dir: Path | None = None,
    peer_path: Path | None = None,
    use_model: bool = True,
    detect: Callable[[RGBImage], list[Face]] | None = None,
) -> tuple[list[Row], DecisionPolicy | None, dict[str, float]]:
    """Rows for every label; the policy used; median ms per face of each model (crop included)."""
    from ageguard.vision.liveness.model import MODEL_DIR, OnnxLivenessModel

    if detect is None:
        from ageguard.vision.detection.retinaface import RetinaFaceDetector

        detect = RetinaFaceDetector().detect
    model = OnnxLivenessModel(model_dir or MODEL_DIR) if use_model else None
    peer = Peer(peer_path) if peer_path is not None else None
    rows: list[Row] = []
    ours_ms: list[float] = []
    peer_ms: list[float] = []
    for label in labels:
        row = Row(label.file, label.real, label.attack, label.source, label.subject)
        rows.append(row)
        with Image.open(image_dir / label.file) as im:
            pil = im.convert("RGB")
        image = np.asarray(pil)
        faces = detect(image)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.area)
        if model is not None:
            t = time.perf_counter()
            scored = model.score(image, face)
            ours_ms.append((time.perf_counter() - t) * 1000)
            row.score = scored.score
            row.quality_ok = _quality_ok(scored.quality, model.policy)
        if peer is not None:
            t = time.perf_counter()
            row.peer_score, row.peer_real = peer.predict(pil, face)
            peer_ms.append((time.perf_counter() - t) * 1000)
    timings = {}
    if ours_ms:
        timings[OURS_NAME] = float(np.median(ours_ms))
    if peer_ms:
        timings[PEER_NAME] = float(np.median(peer_ms))
    return rows, (model.policy if model is not None else None), timings


def _quality_ok(quality: FaceQuality, policy: DecisionPolicy) -> bool:
    return quality.problem(policy.quality) is None


# ---------------------------------------------------------------- report


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _auc(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def markdown(result: dict[str, Any], level: str = "medium") -> str:
    """Tables: per level (all images), then per source and attack type at ``level``, ours vs peer."""
    ours = result.get("ours", {})
    peer = result.get("peer")
    lines = [
        f"Images: {result['images']}, no face found: {result['no_face']}.",
        "",
        "| model | level | APCER | BPCER | ACER | undetermined | ROC AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for lv in LEVELS if ours else ():
        a = ours[lv]["all"]
        lines.append(
            f"| {OURS_NAME} | {lv} | {_pct(a['apcer'])} | {_pct(a['bpcer'])} | {_pct(a['acer'])} "
            f"| {_pct(a['undetermined'])} | {_auc(a['auc'])} |"
        )
    if peer:
        a = peer["all"]
        lines.append(
            f"| {PEER_NAME} | argmax | {_pct(a['apcer'])} | {_pct(a['bpcer'])} | {_pct(a['acer'])} "
            f"| - | {_auc(a['auc'])} |"
        )
    keys = list((ours.get(level) or peer or {}).keys())
    groups = [k for k in keys if k != "all"]
    if groups:
        lines += ["", f"By source and attack type (AgeGuard at `{level}`; the peer at argmax):", ""]
        head = "| group | n | AgeGuard APCER | AgeGuard BPCER | AgeGuard undet. | AgeGuard AUC |"
        sep = "|---|---|---|---|---|---|"
        if peer:
            head += " peer APCER | peer BPCER | peer AUC |"
            sep += "---|---|---|"
        lines += [head, sep]
        for key in groups:
            o = ours.get(level, {}).get(key) if ours else None
            p = peer.get(key) if peer else None
            ref = o or p or {}
            n = ref.get("n_attack", 0) + ref.get("n_bona_fide", 0)
            line = f"| {key} | {n} |"
            line += (
                f" {_pct(o['apcer'])} | {_pct(o['bpcer'])} | {_pct(o['undetermined'])} | {_auc(o['auc'])} |"
                if o
                else " - | - | - | - |"
            )
            if peer:
                line += (
                    f" {_pct(p['apcer'])} | {_pct(p['bpcer'])} | {_auc(p['auc'])} |" if p else " - | - | - |"
                )
            lines.append(line)
    if result.get("ms_per_face"):
        lines += ["", "Median ms per face (crop + network, one thread): "]
        lines[-1] += ", ".join(f"{k} {v:.2f} ms" for k, v in result["ms_per_face"].items())
    return "\n".join(lines) + "\n"


def run(
    images: Path,
    labels: Path,
    peer: bool = False,
    json_out: Path | None = None,
    *,
    model_dir: Path | None = None,
    sources: Sequence[str] = (),
    subjects: Sequence[str] = (),
    peer_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``ageguard eval antispoof``: score the labelled images, print the tables, write the JSON report.

    ``sources`` / ``subjects`` restrict the evaluation to those rows of the labels (held-out folds).
    """
    rows_in = read_labels(labels)
    if sources:
        rows_in = [r for r in rows_in if r.source in sources]
    if subjects:
        rows_in = [r for r in rows_in if r.subject in subjects]
    rows, policy, timings = score_images(
        images, rows_in, model_dir=model_dir, peer_path=find_peer(peer_path) if peer else None
    )
    result = metrics(rows, policy)
    result["ms_per_face"] = timings
    result["model_dir"] = str(model_dir) if model_dir else "shipped"
    if policy is not None:
        result["policy"] = policy.to_json()
    result["rows"] = [asdict(r) for r in rows]
    echo(markdown(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=1) + "\n")
    return result
