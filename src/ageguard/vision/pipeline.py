"""The single entry the API and the CLI call: bytes -> decode and image rules -> detect -> face rules
-> age (and liveness) -> result. Every failure is an :class:`AgeGuardError` with a catalogue code."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ageguard.errors import AgeGuardError
from ageguard.settings import Settings, get_settings
from ageguard.vision import faces as face_rules
from ageguard.vision.image import DecodedImage, decode
from ageguard.vision.spare import spare_pool
from ageguard.vision.types import (
    AgeEstimate,
    AssuranceLevel,
    Face,
    LivenessVerdict,
    RGBImage,
    ValidationLevel,
)


@dataclass(slots=True)
class Analysis:
    age: AgeEstimate | None = None
    liveness: LivenessVerdict | None = None
    # Milliseconds per stage (decode, detect, validate, age, liveness) and per network ("net:NAME").
    timings_ms: dict[str, float] = field(default_factory=dict)


class _Timer:
    def __init__(self, sink: dict[str, float]) -> None:
        self.sink = sink

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sink[stage] = self.sink.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0


class Pipeline:
    """Loads the models on first use (or :meth:`load`); thread-safe to call from several threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._lock = threading.Lock()
        self._detector: Any = None
        self._ages: Any = None
        self._liveness: Any = None
        self._pool = spare_pool(self.settings.pixel_threads)

    def load(self, liveness: bool = True) -> None:
        """Load every model now (a server does this before it reports healthy)."""
        self._age_ensemble()
        self._face_detector()
        if liveness:
            self._liveness_model()

    def analyse(
        self,
        data: bytes,
        *,
        level: ValidationLevel = "normal",
        age: bool = True,
        liveness: bool = False,
        assurance: AssuranceLevel = "medium",
    ) -> Analysis:
        """Raise :class:`ageguard.errors.AgeGuardError` with a catalogue code for any bad input."""
        analysis = Analysis()
        timer = _Timer(analysis.timings_ms)
        decoded, face = self._validated_face(data, level, timer)
        image, pil, pool = decoded.rgb, decoded.pil, self._pool
        # The liveness crops are made on a spare core while the age networks run.
        live_model = self._liveness_model() if liveness else None
        live_inputs = pool.submit(live_model.prepare, image, face, pil) if live_model else None
        if age:
            with timer("age"):
                analysis.age = self._age_ensemble().estimate(
                    image, face, analysis.timings_ms, pil=pil, pool=pool
                )
        if live_model is not None and live_inputs is not None:
            with timer("liveness"):
                scored = live_model.score_inputs(live_inputs.result(), analysis.timings_ms)
                analysis.liveness = live_model.decide(scored, assurance)
        return analysis

    def check(self, data: bytes, *, level: ValidationLevel = "normal") -> None:
        """Run the image and face requirements only (capture guidance); raise on the first failure."""
        self._validated_face(data, level, _Timer({}))

    def face_of(self, data: bytes, *, level: ValidationLevel = "normal") -> tuple[RGBImage, Face]:
        """The decoded pixels and the face the models would be given, after every requirement passed."""
        decoded, face = self._validated_face(data, level, _Timer({}))
        return decoded.rgb, face

    def detect_faces(self, image: RGBImage) -> list[Face]:
        """Every face the detector finds in decoded pixels (capture guidance applies its own rules)."""
        faces: list[Face] = self._face_detector().detect(image)
        return faces

    def model_flops(self) -> dict[str, float]:
        """FLOPs per network for one request (2 x multiply-accumulates), for the benchmark."""
        from ageguard.models import store
        from ageguard.models.flops import count_flops

        flops: dict[str, float] = {}
        for name, shape in self._age_ensemble().network_inputs().items():
            flops[name] = float(count_flops(store.model_path(name), shape).flops)
        detector = self._face_detector()
        flops[detector.name] = float(count_flops(store.model_path(detector.name), (1, 3, 384, 640)).flops)
        return flops

    def _validated_face(
        self, data: bytes, level: ValidationLevel, timer: _Timer
    ) -> tuple[DecodedImage, Face]:
        limits = self.settings.limits(level)
        with timer("decode"):
            decoded = decode(data, limits, self.settings)
        with timer("detect"):
            detections = self._face_detector().detect(decoded.rgb, timer.sink, pil=decoded.pil)
        with timer("validate"):
            face = face_rules.select_face(detections, decoded.rgb, limits, self.settings)
        return decoded, face

    def _face_detector(self) -> Any:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    from ageguard.vision.detection.retinaface import RetinaFaceDetector

                    self._detector = RetinaFaceDetector()
        return self._detector

    def _age_ensemble(self) -> Any:
        if self._ages is None:
            with self._lock:
                if self._ages is None:
                    if self.settings.age_head_dir is not None:
                        from ageguard.vision.age.estimator import AgeEstimator, AgeHead

                        self._ages = AgeEstimator.with_head(AgeHead(self.settings.age_head_dir))
                    else:
                        from ageguard.vision.age.ensemble import AgeEnsemble

                        self._ages = AgeEnsemble.load(self.settings)
        return self._ages

    def _liveness_model(self) -> Any:
        if self._liveness is None:
            with self._lock:
                if self._liveness is None:
                    try:
                        from ageguard.vision.liveness import load_liveness_model
                    except ImportError as exc:
                        raise AgeGuardError("FAIL_PREDICTION", "Antispoofing prediction failed.") from exc
                    self._liveness = load_liveness_model(self.settings)
        return self._liveness
