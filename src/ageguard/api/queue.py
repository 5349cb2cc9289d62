"""Inference off the event loop, with a bounded queue.

``inference_threads`` workers run the pipeline; up to ``queue_size`` more jobs may wait for one. A job
that finds the queue full is refused at once with 503 ``SERVICE_UNAVAILABLE`` so that an overloaded
server answers quickly (and ``/health`` keeps answering) instead of piling up requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ageguard.errors import AgeGuardError

T = TypeVar("T")


class InferenceQueue:
    def __init__(self, threads: int, queue_size: int) -> None:
        self.threads = max(1, threads)
        self.queue_size = max(0, queue_size)
        self.capacity = self.threads + self.queue_size
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="ageguard-inference")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        return self._pending

    @property
    def full(self) -> bool:
        """No room for another job now (a hint: :meth:`run` decides)."""
        return self._pending >= self.capacity

    def _release(self, _future: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on an inference thread; raise ``SERVICE_UNAVAILABLE`` when the queue is full."""
        with self._lock:
            if self._pending >= self.capacity:
                raise AgeGuardError("SERVICE_UNAVAILABLE", "The service is busy; please retry shortly.")
            self._pending += 1
        try:
            future: Future[T] = self._executor.submit(fn)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        # Released when the job ends, not when the awaiting request goes away (a cancelled request
        # still occupies its thread until the pipeline returns).
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
