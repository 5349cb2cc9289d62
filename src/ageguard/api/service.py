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

from ageguard.api import metrics
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
    # Request records are written before the answer goes out, a few at a time per process.
    _recorder: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="ageguard-record")
    )
    # Health pings get their own thread: they never queue behind request work in the shared thread pool.
    _prober: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="ageguard-health")
    )

    def start(self) -> None:
        """Load the models in the background; ``/health`` and ``/ready`` answer 503 until they are loaded."""
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

    def store_check(self) -> str | None:
        """None when the Hub store answers a ping, else why not (exception class only: no URL, no data)."""
        try:
            result = self.hub.ping()
        except Exception as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            log.warning("store ping failed: %s (%s)", type(exc).__name__, type(cause).__name__)
            return f"the Hub database did not answer ({type(cause).__name__})"
        if result is None or bool(result):
            return None
        return "the Hub database did not answer"

    async def store_check_async(self, timeout_s: float | None = None) -> str | None:
        """:meth:`store_check` on the health thread; a store slower than ``timeout_s`` counts as down."""
        limit = self.settings.ready_timeout_s if timeout_s is None else timeout_s
        future = asyncio.get_running_loop().run_in_executor(self._prober, self.store_check)
        try:
            return await asyncio.wait_for(future, limit)
        except TimeoutError:
            log.warning("store ping took longer than %.1f s", limit)
            return f"the Hub database did not answer within {limit:g} s"

    def models_problem(self) -> str | None:
        """None once the models are loaded, else why not."""
        if self.models_ready.is_set():
            return None
        return "model loading failed" if self.load_failed else "models are still loading"

    async def record(self, record: RequestRecord) -> bool:
        """Write the request's record to the Hub; True once it is committed.

        The API answers only after this returns, so no answer is ever given whose record could still be
        lost (an instance killed after answering). A failed write is logged and counted
        (``ageguard_record_failures_total``), and the caller answers 503 instead of the result.
        """
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._recorder, self.hub.record_request, record)
        except Exception as exc:
            metrics.RECORD_FAILURES.inc()
            log.error("request record not written: %s; answering SERVICE_UNAVAILABLE", type(exc).__name__)
            return False
        return True

    def stop(self) -> None:
        self.queue.shutdown()
        self._recorder.shutdown(wait=True)
        self._prober.shutdown(wait=False)
