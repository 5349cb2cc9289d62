"""The state one API process shares between requests, and the protocols of what it is given."""

from __future__ import annotations

import asyncio
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
    # Health pings get their own thread: they never queue behind request work in the shared thread pool.
    _prober: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="ageguard-health")
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

    async def store_ok_async(self, timeout_s: float = 5.0) -> bool:
        """:meth:`store_ok` on the health thread; a store that takes longer than ``timeout_s`` is down."""
        future = asyncio.get_running_loop().run_in_executor(self._prober, self.store_ok)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False

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
        self._prober.shutdown(wait=False)
