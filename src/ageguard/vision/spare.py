"""Spare cores for a request's own pixel work: crops and quality measures made while a network runs.

A request's networks run one after another on the request's own thread (each with the threads the
model store gives it); what this pool takes is only AgeGuard's own code around them: face-api's and
the liveness model's crops and the quality measures, made while faceres-deep runs. At low concurrency
a core would otherwise sit idle while one request runs, so the request finishes sooner; under full
load a job no helper has begun is taken back by the request's own thread, so nothing waits on a busy
helper. With ``pixel_threads`` 1 every job runs on the request's thread when its result is needed:
the pool changes when work is done, never what it computes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

R = TypeVar("R")


class Job(Generic[R]):
    """Work handed to the pool; :meth:`result` does it on the caller's thread if no helper has begun it."""

    def __init__(self, fn: Callable[..., R], args: tuple[object, ...], future: Future[R] | None) -> None:
        self._fn, self._args, self._future = fn, args, future

    def result(self) -> R:
        # A helper busy with another request's work must not make this one wait: take the job back.
        if self._future is None or self._future.cancel():
            return self._fn(*self._args)
        return self._future.result()


class SparePool:
    """``threads`` helper threads (0: every job runs on the caller's thread when its result is asked for)."""

    def __init__(self, threads: int) -> None:
        self.threads = max(0, threads)
        self._executor = (
            ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="ageguard-pixels")
            if self.threads
            else None
        )

    def submit(self, fn: Callable[..., R], *args: object) -> Job[R]:
        """Offer ``fn(*args)`` to a helper thread."""
        future = self._executor.submit(fn, *args) if self._executor is not None else None
        return Job(fn, args, future)


_pools: dict[int, SparePool] = {}
_pools_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # A forked child has the parent's pools but none of their threads (and maybe a lock held by one of
    # them): it makes its own.
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def spare_pool(threads: int) -> SparePool:
    """The process's pool for ``pixel_threads`` = ``threads``, the caller's thread included (0: one
    thread per core, so one helper fewer than the cores, and at least one)."""
    count = max((os.cpu_count() or 1) - 1, 1) if threads == 0 else threads - 1
    with _pools_lock:
        pool = _pools.get(count)
        if pool is None:
            pool = _pools[count] = SparePool(count)
        return pool


INLINE = SparePool(0)
