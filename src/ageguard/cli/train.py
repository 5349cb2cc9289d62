"""``ageguard train antispoof|antispoof-cv|antispoof-curves`` (training needs the ``[train]`` extra) and
``ageguard eval antispoof``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ageguard.cli._app import app

train_app = typer.Typer(no_args_is_help=True, help="Train AgeGuard's own models (needs the [train] extra).")
app.add_typer(train_app, name="train")


def _default_data() -> Path:
    repo = Path(__file__).resolve().parents[3]
    for base in (
        repo.parent / "shared",
        repo / "shared",
        Path.cwd().parent / "shared",
        Path.cwd() / "shared",
    ):
        if (base / "datasets" / "fas-dev").exists():
            return base / "datasets"
    return repo.parent / "shared" / "datasets"


# Options both training commands share.
BackboneOption = Annotated[
    str | None,
    typer.Option(help="Frozen feature extractor(s), e.g. retinaface+mobilenetv3 (default: the recipe's)."),
]
CropSizeOption = Annotated[int | None, typer.Option(help="Both crops, pixels (default: the recipe's).")]
ContextScaleOption = Annotated[float, typer.Option(help="Context crop: face box scaled by this.")]
FaceScaleOption = Annotated[float, typer.Option(help="Face crop: face box scaled by this.")]
ExtraOption = Annotated[
    list[Path] | None,
    typer.Option(
        help="A folder of labelled captures in fas-dev's layout (images/ and labels.csv: "
        "file,label[,attack_type,source,subject]), trained on as more sources; repeatable."
    ),
]
FeaturesOption = Annotated[
    Path | None,
    typer.Option(
        help="Cache folder of per-image backbone features (numbers only, no pixels): extracted once, "
        "reused by every fold and run with the same backbone, crops, passes and seed."
    ),
]


DomainWeightOption = Annotated[float, typer.Option(help="Source-adversary weight (SSDG; 0: off).")]
SyntheticWeightOption = Annotated[
    float, typer.Option(help="Weight of the synthetic-attack groups against the real ones (0: unused).")
]
ValShareOption = Annotated[
    float,
    typer.Option(help="Validation share of each source's subjects (of single-setup sources: of the setups)."),
]
SceneLightOption = Annotated[
    float,
    typer.Option(help="Share of augmented captures given a room's light (white balance, dim, backlight)."),
]


def _default_features() -> Path:
    return Path.home() / ".cache" / "ageguard-data" / "antispoof-features"


def _table(root: Path, cfg: object, features: Path, box_cache: Path | None, echo: object) -> object:
    """Every image's features from the cache (extracted where missing), the peer's scores beside."""
    from ageguard.eval.antispoof import find_peer
    from ageguard.train.antispoof import features as feats
    from ageguard.train.antispoof.trainer import TrainConfig, load_samples
    from ageguard.vision.detection.retinaface import RetinaFaceDetector

    assert isinstance(cfg, TrainConfig)
    try:
        peer: Path | None = find_peer()
    except FileNotFoundError:
        peer = None
    samples = load_samples(root, cfg)
    return feats.build(
        samples,
        cfg,
        features,
        RetinaFaceDetector().detect,
        peer_path=peer,
        box_cache=box_cache or features / "boxes.json",
        log=echo,  # type: ignore[arg-type]
    )


def _backbone(name: str | None, default: str) -> str:
    from ageguard.train.antispoof.graph import BACKBONES

    if name is None:
        return default
    if not all(part in BACKBONES for part in name.split("+")):
        typer.echo(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}", err=True)
        raise typer.Exit(2)
    return name


def _default_out() -> Path:
    from ageguard.vision.liveness.model import MODEL_DIR

    return MODEL_DIR


@train_app.command("antispoof")
def train_antispoof(
    data: Annotated[
        Path | None,
        typer.Option(help="Folder holding fas-dev/, nuaa-dev/, utkface-dev/ (default ../shared/datasets)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where antispoof.onnx and antispoof.json go (default: the shipped ones)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same model.")] = 0,
    backbone: BackboneOption = None,
    crop_size: CropSizeOption = None,
    passes: Annotated[int, typer.Option(help="Augmented passes over the training crops.")] = 3,
    context_scale: ContextScaleOption = 1.3,
    face_scale: FaceScaleOption = 0.6,
    epochs: Annotated[int, typer.Option(help="Training epochs of the head.")] = 40,
    utk: Annotated[int, typer.Option(help="UTKFace crops added as extra live faces.")] = 1500,
    limit: Annotated[
        int, typer.Option(help="At most this many images per source and label (smoke runs).")
    ] = 0,
    exclude_source: Annotated[
        list[str] | None, typer.Option(help="Leave this source out (leave-one-source-out folds).")
    ] = None,
    exclude_subject: Annotated[
        list[str] | None,
        typer.Option(help="Leave this subject out, e.g. NUAA:0001 (leave-subjects-out folds)."),
    ] = None,
    box_cache: Annotated[
        Path | None, typer.Option(help="JSON cache of detected face boxes (boxes only, no pixels).")
    ] = None,
    extra: ExtraOption = None,
    features: FeaturesOption = None,
    domain_weight: DomainWeightOption = 0.3,
    synthetic_weight: SyntheticWeightOption = 0.5,
    scene_light: SceneLightOption = 0.0,
    val_share: ValShareOption = 0.15,
) -> None:
    """Train, calibrate and export the passive liveness model (CPU, reproducible from --seed).

    With --features, the frozen backbones' features come from that cache (the one `antispoof-cv` fills),
    so the shipped model is trained on exactly the rows its folds were measured with."""
    try:
        from ageguard.train.antispoof.data import LabelsError
        from ageguard.train.antispoof.trainer import TrainConfig, run
    except ImportError as exc:  # torch missing
        typer.echo(f"training needs the [train] extra (pip install -e '.[train]'): {exc}", err=True)
        raise typer.Exit(2) from exc
    from ageguard.vision.detection.retinaface import RetinaFaceDetector

    cfg = TrainConfig(
        seed=seed,
        backbone=_backbone(backbone, TrainConfig.backbone),
        crop_size=crop_size or TrainConfig.crop_size,
        context_scale=context_scale,
        face_scale=face_scale,
        passes=passes,
        epochs=epochs,
        utk_count=utk,
        limit=limit,
        exclude_sources=tuple(exclude_source or ()),
        exclude_subjects=tuple(exclude_subject or ()),
        domain_weight=domain_weight,
        synthetic_weight=synthetic_weight,
        scene_light=scene_light,
        val_share=val_share,
        extra=tuple(str(folder.resolve()) for folder in extra or ()),
    )
    root = data or _default_data()
    if not (root / "fas-dev").exists():
        typer.echo(f"no fas-dev/ under {root}", err=True)
        raise typer.Exit(2)
    try:
        if features is not None:
            from ageguard.train.antispoof import folds

            table = _table(root, cfg, features, box_cache, typer.echo)
            result = folds.train_final(table, out or _default_out(), cfg, typer.echo)  # type: ignore[arg-type]
        else:
            result = run(root, out or _default_out(), cfg, RetinaFaceDetector().detect, box_cache, typer.echo)
    except LabelsError as exc:  # raised by the first step, reading the labels, before any long work
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"model {result.onnx}, policy {result.policy_json}, validation AUC {result.val_auc:.4f}")


@train_app.command("antispoof-cv")
def train_antispoof_cv(
    data: Annotated[
        Path | None, typer.Option(help="Folder holding fas-dev/, nuaa-dev/, utkface-dev/.")
    ] = None,
    extra: ExtraOption = None,
    features: FeaturesOption = None,
    report: Annotated[Path, typer.Option("--json", help="The JSON report (every held-out score).")] = Path(
        "reports/antispoof-cv.json"
    ),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    backbone: BackboneOption = None,
    crop_size: CropSizeOption = None,
    fold: Annotated[list[str] | None, typer.Option(help="Run only folds whose source contains this.")] = None,
    context_scale: ContextScaleOption = 1.3,
    face_scale: FaceScaleOption = 0.6,
    passes: Annotated[int, typer.Option(help="Augmented passes over the training crops.")] = 3,
    epochs: Annotated[int, typer.Option(help="Training epochs of the head.")] = 40,
    utk: Annotated[int, typer.Option(help="UTKFace crops added as extra live faces.")] = 1500,
    domain_weight: DomainWeightOption = 0.3,
    synthetic_weight: SyntheticWeightOption = 0.5,
    scene_light: SceneLightOption = 0.0,
    val_share: ValShareOption = 0.15,
    limit: Annotated[
        int, typer.Option(help="At most this many images per source and label (smoke runs).")
    ] = 0,
    box_cache: Annotated[Path | None, typer.Option(help="JSON cache of detected face boxes.")] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Also draw the DET curves (one PNG per source family) here.")
    ] = None,
) -> None:
    """Leave-one-source-out over every source (fas-dev's four, NUAA, each --extra setup), the peer beside."""
    try:
        from ageguard.train.antispoof import folds
        from ageguard.train.antispoof.data import LabelsError
        from ageguard.train.antispoof.trainer import TrainConfig
    except ImportError as exc:
        typer.echo(f"training needs the [train] extra (pip install -e '.[train]'): {exc}", err=True)
        raise typer.Exit(2) from exc

    wanted = fold or []
    cfg = TrainConfig(
        seed=seed,
        backbone=_backbone(backbone, TrainConfig.backbone),
        crop_size=crop_size or TrainConfig.crop_size,
        context_scale=context_scale,
        face_scale=face_scale,
        passes=passes,
        epochs=epochs,
        utk_count=utk,
        domain_weight=domain_weight,
        synthetic_weight=synthetic_weight,
        scene_light=scene_light,
        val_share=val_share,
        limit=limit,
        extra=tuple(str(folder.resolve()) for folder in extra or ()),
    )
    root = data or _default_data()
    try:
        table = _table(root, cfg, features or _default_features(), box_cache, typer.echo)
    except LabelsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    result = folds.run_folds(
        table,  # type: ignore[arg-type]
        cfg,
        only=lambda name: not wanted or any(w in name for w in wanted),
        log=typer.echo,
    )
    folds.write(result, report)
    typer.echo(folds.markdown(result))
    typer.echo(folds.acceptance(result))
    typer.echo(f"report written to {report}")
    if plots is not None:
        from ageguard.train.antispoof import curves

        for path in curves.plot(result, plots):
            typer.echo(f"wrote {path}")


@train_app.command("antispoof-curves")
def train_antispoof_curves(
    report: Annotated[Path, typer.Option("--report", help="An `antispoof-cv` JSON report.")] = Path(
        "reports/antispoof-cv.json"
    ),
    out: Annotated[Path, typer.Option(help="Folder for the PNGs (antispoof-det-<family>.png).")] = Path(
        "docs"
    ),
) -> None:
    """DET curves per source family from an `antispoof-cv` report: AgeGuard and the peer on one plot."""
    from ageguard.train.antispoof import curves

    for path in curves.plot_file(report, out):
        typer.echo(f"wrote {path}")


@app.command("eval-antispoof")
def eval_antispoof(
    images: Annotated[Path, typer.Option(help="Folder of images named as in the labels.")],
    labels: Annotated[Path, typer.Option(help="CSV with columns file,label[,attack_type,source,subject].")],
    peer: Annotated[
        bool, typer.Option("--peer", help="Also run the MiniFASNetV2 peer from ../shared/peers.")
    ] = False,
    report: Annotated[Path | None, typer.Option("--json", help="Where to write the JSON report.")] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(help="A trained model folder (antispoof.onnx + .json); default the shipped one."),
    ] = None,
    source: Annotated[list[str] | None, typer.Option(help="Only rows of this source (repeatable).")] = None,
    subject: Annotated[list[str] | None, typer.Option(help="Only rows of this subject (repeatable).")] = None,
) -> None:
    """APCER, BPCER, ACER per level, source and attack type; undetermined share; ROC AUC."""
    from ageguard.eval import antispoof

    antispoof.run(
        images,
        labels,
        peer,
        report,
        model_dir=model_dir,
        sources=source or (),
        subjects=subject or (),
        echo=typer.echo,
    )
