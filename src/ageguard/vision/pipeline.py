"""The single entry the API and the CLI call: bytes -> validate -> detect -> estimate -> result."""

from __future__ import annotations

from dataclasses import dataclass, field

from ageguard.settings import Settings, get_settings
from ageguard.vision.types import AgeEstimate, AssuranceLevel, LivenessVerdict, ValidationLevel


@dataclass(slots=True)
class Analysis:
    age: AgeEstimate | None = None
    liveness: LivenessVerdict | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Loads the models once; thread-safe to call from several worker threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

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
        raise NotImplementedError

    def check(self, data: bytes, *, level: ValidationLevel = "normal") -> None:
        """Run the image and face requirements only (capture guidance); raise on the first failure."""
        raise NotImplementedError
