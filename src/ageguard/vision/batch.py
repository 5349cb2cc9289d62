"""Many files through the pipeline on every core: one worker process per core, results in input order."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ageguard.errors import AgeGuardError
from ageguard.vision.types import AssuranceLevel, ValidationLevel

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True, slots=True)
class FileResult:
    file: str
    age: float | None = None
    st_dev: float | None = None
    prediction: str | None = None
    score: float | None = None
    error_code: str | None = None
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True, slots=True)
class Job:
    level: ValidationLevel = "normal"
    liveness: bool = False
    assurance: AssuranceLevel = "medium"


def iter_image_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, and the images inside folders (recursively, sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            yield path


_worker_pipeline: Any = None


def _init_worker(threads: int) -> None:
    global _worker_pipeline
    from ageguard.settings import get_settings
    from ageguard.vision.pipeline import Pipeline

    # Each process already has its own core: no helper threads beside it (they would only contend).
    settings = get_settings().model_copy(update={"onnx_threads": threads, "pixel_threads": 1})
    _worker_pipeline = Pipeline(settings)


def analyse_file(pipeline: Any, path: Path, job: Job) -> FileResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileResult(str(path), error_code="FILE_NOT_READABLE", error_message=str(exc.strerror or exc))
    try:
        analysis = pipeline.analyse(
            data, level=job.level, age=True, liveness=job.liveness, assurance=job.assurance
        )
    except AgeGuardError as exc:
        return FileResult(str(path), error_code=exc.code, error_message=exc.message)
    age = analysis.age
    verdict = analysis.liveness
    return FileResult(
        str(path),
        age=round(age.age, 2) if age else None,
        st_dev=round(age.st_dev, 2) if age else None,
        prediction=verdict.prediction if verdict else None,
        score=round(verdict.score, 4) if verdict else None,
    )


def _run_one(args: tuple[Path, Job]) -> FileResult:
    return analyse_file(_worker_pipeline, *args)


def analyse_files(files: list[Path], job: Job, workers: int | None = None) -> Iterator[FileResult]:
    """Yield one result per file, in order; bad files give an error result and the run goes on."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(files) < 4:
        _init_worker(0)
        for path in files:
            yield _run_one((path, job))
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(1,)) as pool:
        yield from pool.map(_run_one, [(path, job) for path in files], chunksize=8)
