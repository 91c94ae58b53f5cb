"""The completer: removes finished work items from the state store, retried until it succeeds.

Made by ``receiver.runtime``; the workers (``receiver.flow.workers``) hand it every item
they carried to its end, the feeder (``receiver.flow.feeder``) counts what it keeps as held.
Items finished meanwhile share one audit sync and one ``state.complete``. An item whose
completion failed (store down, no answer) stays here, held by this process in the local
buffer (so the feeder keeps touching it and no replica takes it over), and is completed again
after a backoff (0.5 s doubling to 30 s) until the store confirms: it is never run again.
Each failure is logged ``state.complete_failed`` with a
:class:`~receiver.decisions.CompletionFailure` and counted; ``pending`` is the
``remediator_completions_pending`` gauge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from receiver.audit import AuditError, AuditLog
from receiver.decisions import CompletionFailure
from receiver.errors import StateError
from receiver.flow.cancel import stop_tasks
from receiver.flow.workqueue import WorkQueue
from receiver.store.protocol import StateStore
from receiver.store.values import WorkItem

_log = structlog.get_logger("remediator.completer")
FIRST_RETRY = 0.5  # seconds before a failed completion is tried again; doubles each time
LAST_RETRY = 30.0  # the longest wait between two tries
ATTEMPT_TIMEOUT = 10.0  # one try given up (and counted a timeout) after this long


class Completer:
    """Finished items of one process, removed from the store once their records are durable."""

    def __init__(self, *, store: StateStore, audit: AuditLog, queue: WorkQueue,
                 on_failure: Callable[[CompletionFailure], None] = lambda _: None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._store = store
        self._audit = audit
        self._queue = queue
        self._on_failure = on_failure
        self._sleep = sleep  # a real wait by default: a retry cadence, not a TTL
        self._finished: dict[str, WorkItem] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0  # consecutive failed tries (0 once one succeeds)

    @property
    def pending(self) -> int:
        """Items finished here and not yet removed from the store."""
        return len(self._finished)

    def finished(self, item: WorkItem) -> None:
        """``item`` was carried to its end: remove it from the store (it is never run again)."""
        self._finished[item.ref] = item
        self._queue.finished(item)
        self._ready.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="remediator-completer")

    async def stop(self) -> None:
        """Stop retrying; one last try for what is left (what fails stays in the store's queue)."""
        if self._task is not None:
            if await stop_tasks([self._task], within=ATTEMPT_TIMEOUT):  # cancelled again until it ends
                _log.error("completer.stop_unfinished")
            self._task = None
        await self.complete_once()

    async def _loop(self) -> None:
        while True:
            await self._ready.wait()
            if await self.complete_once():
                continue
            await self._sleep(min(LAST_RETRY, FIRST_RETRY * 2 ** (self.failures - 1)))
            self._ready.set()  # tried again even if nothing new finished

    async def complete_once(self) -> bool:
        """One try for every item finished so far; False when it failed (they stay pending)."""
        self._ready.clear()
        items = list(self._finished.values())
        if not items:
            return True
        try:
            await self._audit.sync()
        except AuditError as exc:
            _log.error("audit.sync_failed", error=str(exc))
        failure: CompletionFailure | None = None
        detail = ""
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                await self._store.complete([item.ref for item in items])
        except StateError as exc:
            failure, detail = CompletionFailure.STATE_UNAVAILABLE, str(exc)
        except TimeoutError:
            failure, detail = CompletionFailure.TIMEOUT, f"no answer within {ATTEMPT_TIMEOUT:g} s"
        except Exception as exc:  # a bug must not stop completion; the items stay and are retried
            _log.exception("completer.crashed")
            failure, detail = CompletionFailure.CRASHED, repr(exc)
        if failure is not None:
            self.failures += 1
            self._on_failure(failure)
            _log.error("state.complete_failed", reason=failure.value, error=detail, items=len(items),
                       attempt=self.failures, decisions=[i.id for i in items[:5]],
                       hint="finished work stays held here and its removal is tried again")
            return False
        if self.failures:
            _log.info("state.complete_recovered", items=len(items), attempts=self.failures + 1)
        self.failures = 0
        for item in items:
            if self._finished.get(item.ref) is item:
                del self._finished[item.ref]
            self._queue.done(item)
        return True
