"""The bounded pool of threads that actions run their blocking SDK calls on.

docker-py, the Kubernetes client and Celery's app are synchronous: each call holds a
thread until the backend answers (or its own timeout passes). They run here, on threads of
their own, not on asyncio's default executor: a slow cluster holding every thread then
waits for this pool only, never for the threads the audit log's fsync or anything else of
the service needs. One :class:`BlockingCalls` per process, built by ``receiver.runtime``
from ``queue.sdk_threads`` and given to every action in its ``ActionContext`` (``ctx.calls``);
closed when the service stops. When every thread is busy, a call waits in the pool's queue,
bounded by the step's timeout: an awaiting step that times out takes its call out of the
queue (a call already running finishes on its thread, as it would have).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

T = TypeVar("T")
A = ParamSpec("A")
DEFAULT_THREADS = 8


class BlockingCalls:
    """A fixed number of threads for blocking calls; more calls wait for one."""

    def __init__(self, threads: int = DEFAULT_THREADS, *, name: str = "remediator-sdk") -> None:
        if threads < 1:
            raise ValueError("a pool for blocking calls needs at least one thread")
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[A, T], /, *args: A.args, **kwargs: A.kwargs) -> T:
        """``fn(*args, **kwargs)`` on one of the pool's threads (context variables carried along)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pool, call)

    def close(self) -> None:
        """Refuse new calls and drop the queued ones; calls running finish on their threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
