"""The state one API process shares between requests, and the protocols of what it is given."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ageguard.api.auth import Verifier
from ageguard.api.queue import InferenceQueue
from ageguard.hub.types import AppView, RequestRecord
from ageguard.settings import Settings
from ageguard.vision.pipeline import Analysis
from ageguard.vision.types import AssuranceLevel, ValidationLevel

log = logging.getLogger("ageguard.api")


class PipelineLike(Protocol):
    def analyse(
        self,
        data: bytes,
        *,
        level: ValidationLevel = "normal",
        age: bool = True,
        liveness: bool = False,
        assurance: AssuranceLevel = "medium",
    ) -> Analysis: ...


class HubLike(Protocol):
    def find_app(self, sdk_id: str) -> AppView | None: ...

    def use_nonce(self, sdk_id: str, nonce: str, now: datetime, ttl_s: int) -> bool: ...

    def record_request(self, record: RequestRecord) -> object: ...

    def ping(self) -> object: ...


@dataclass
class ServiceState:
    settings: Settings
    pipeline: PipelineLike
    hub: HubLike
    verifier: Verifier
    queue: InferenceQueue
    warmup: Callable[[], None] | None = None
    models_ready: threading.Event = field(default_factory=threading.Event)
    load_failed: bool = False
    _recorder: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="ageguard-record")
    )

    def start(self) -> None:
        """Load the models in the background; ``/health`` answers 503 until they are loaded."""
        if self.warmup is None:
            self.models_ready.set()
            return
        threading.Thread(target=self._load, name="ageguard-warmup", daemon=True).start()

    def _load(self) -> None:
        assert self.warmup is not None
        try:
            self.warmup()
        except Exception as exc:  # never image data here: warm-up runs on built-in inputs only
            self.load_failed = True
            log.error("model warm-up failed: %s: %s", type(exc).__name__, exc)
            return
        self.models_ready.set()
        log.info("models loaded; ready")

    def store_ok(self) -> bool:
        try:
            result = self.hub.ping()
        except Exception as exc:
            log.warning("store ping failed: %s", type(exc).__name__)
            return False
        return result is None or bool(result)

    def record(self, record: RequestRecord) -> None:
        """Record a request in the Hub off the request path (one writer thread per process)."""
        self._recorder.submit(self._record, record)

    def _record(self, record: RequestRecord) -> None:
        try:
            self.hub.record_request(record)
        except Exception as exc:
            log.warning("could not record request: %s", type(exc).__name__)

    def stop(self) -> None:
        self.queue.shutdown()
        self._recorder.shutdown(wait=True)
