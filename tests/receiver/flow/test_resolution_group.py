"""Resolved-alert closes shared between concurrent webhooks (``receiver.flow.resolution``): one
``close_resolved`` for the closes of one turn, each webhook recording just its own, as alone.

Each case starts its webhooks in the same turn of the event loop, on SQLite and on the local
Redis, through a store that counts (and, scripted, fails) the calls; every alert has a pending
approval ``p-<fp>`` and an armed timer ``t-<fp>``. What each webhook recorded (approvals moved,
timers taken, ``r-<fp>`` for ``alert.resolved``) is kept per webhook (a context variable of its
task), then checked with its outcome, the number of store calls and what is left in the store.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import pytest

from receiver.audit import AuditEvent, AuditLog
from receiver.errors import StateError
from receiver.flow.guards.approvals import Approvals
from receiver.flow.resolution import GROUP_MAX, Resolutions
from receiver.flow.verify import Verifier, resolved_marker
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.sqlite.store import SqliteStateStore
from receiver.store.values import Approval, ApprovalStatus, Closed, PartlyClosed, Resolved, Timer
from rules.alert import Alert
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix, raw_client
from tests.support.resolving import arm

_request: contextvars.ContextVar[int] = contextvars.ContextVar("request")
PARTLY = "partly"  # a scripted call that runs, then raises PartlyClosed with what it closed


def resolved(fp: str) -> Alert:
    return Alert(fingerprint=fp, status="resolved", labels={"alertname": "HighCPU"}, annotations={},
                 starts_at=datetime(2026, 11, 23, 6, 42, 28, tzinfo=UTC),
                 starts_at_raw="2026-11-23T06:42:28Z",
                 ends_at=datetime(2026, 11, 23, 7, 42, 28, tzinfo=UTC))


class Recorder:
    """Approvals, verifier and audit log in one: what each webhook recorded, in order."""

    def __init__(self) -> None:
        self.by_request: dict[int, list[str]] = {}

    def _add(self, *names: str) -> None:
        self.by_request.setdefault(_request.get(), []).extend(names)

    def closed(self, approvals: Sequence[Approval]) -> int:
        self._add(*(a.id for a in approvals))
        return len(approvals)

    def resolution(self, timers: Sequence[Timer]) -> None:
        self._add(*(t.id for t in timers))

    def record(self, event: AuditEvent, **fields: Any) -> None:
        assert event is AuditEvent.ALERT_RESOLVED
        self._add(f"r-{fields['fingerprint']}")


class Counting:
    """A store's ``close_resolved`` with each call's fingerprints kept; ``script`` fails calls in turn."""

    def __init__(self, store: StateStore, script: Sequence[Exception | str | None]) -> None:
        self.store = store
        self.script = list(script)
        self.calls: list[list[str]] = []

    async def close_resolved(self, firings: Sequence[Resolved], **kw: Any) -> list[Closed]:
        self.calls.append([f.fingerprint for f in firings])
        failure = self.script.pop(0) if self.script else None
        if isinstance(failure, Exception):
            raise failure
        closed = await self.store.close_resolved(firings, **kw)
        if failure == PARTLY:
            raise PartlyClosed("the replicas did not confirm it", closed)
        return closed


Outcome = Literal["ok"] | type[Exception]


@dataclass(frozen=True)
class Case:
    name: str
    requests: list[str]  # each webhook's resolved alerts, one letter each
    want: list[tuple[Outcome, list[str]]]  # each webhook's outcome and what it recorded
    calls: int
    script: list[Exception | str | None] = field(default_factory=list)


def ok(fps: str) -> tuple[Outcome, list[str]]:
    return "ok", [x for fp in fps for x in (f"p-{fp}", f"t-{fp}", f"r-{fp}")]


CASES = [
    Case("a lone webhook: one call", ["ab"], [ok("ab")], calls=1),
    Case("three webhooks share one call, each records its own", ["a", "bc", "d"],
         [ok("a"), ok("bc"), ok("d")], calls=1),
    Case("an alert two webhooks resolve is closed for the first, nothing for the later", ["ab", "a"],
         [ok("ab"), ("ok", ["r-a"])], calls=1),
    Case("the shared call fails: each alone, and they succeed", ["a", "b", "c"],
         [ok("a"), ok("b"), ok("c")], calls=4, script=[StateError("connection lost")]),
    Case("the store is down: after one more try the rest get its error untried", ["a", "b", "c"],
         [(StateError, []), (StateError, []), (StateError, [])], calls=2,
         script=[StateError("down"), StateError("down")]),
    Case("one webhook's own failure mid-group: the rest get it untried", ["a", "b", "c"],
         [ok("a"), (StateError, []), (StateError, [])], calls=3,
         script=[StateError("x"), None, StateError("y")]),
    Case("a lone webhook's failure: one call", ["a"], [(StateError, [])], calls=1,
         script=[StateError("down")]),
    Case("partly closed when shared: each its own part, 503", ["ab", "c"],
         [(PartlyClosed, ["p-a", "t-a", "p-b", "t-b"]), (PartlyClosed, ["p-c", "t-c"])], calls=1,
         script=[PARTLY]),
    Case("partly closed alone after a shared failure is its own: the next still tries", ["a", "b"],
         [(PartlyClosed, ["p-a", "t-a"]), ok("b")], calls=3, script=[StateError("x"), PARTLY]),
]


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path,
                clock: FakeClock) -> AsyncIterator[StateStore]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        opened: StateStore = SqliteStateStore(tmp_path / "state.db", clock=clock)
    else:
        from receiver.store.redis.store import RedisStateStore  # noqa: PLC0415

        opened = RedisStateStore(REDIS_URL, clock=clock, prefix=prefix)
    await opened.open()
    yield opened
    await opened.close()
    if request.param == "redis":
        await drop_prefix(prefix)


def resolutions(store: Any, make_settings: Callable[..., Settings], recorder: Recorder,
                clock: FakeClock) -> Resolutions:
    return Resolutions(make_settings(), store=cast(StateStore, store), approvals=cast(Approvals, recorder),
                       verifier=cast(Verifier, recorder), audit=cast(AuditLog, recorder), clock=clock)


async def _outcome(res: Resolutions, n: int, fps: Sequence[str]) -> Outcome:
    _request.set(n)
    try:
        await res.close([resolved(fp) for fp in fps])
    except Exception as exc:
        return type(exc)
    return "ok"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_concurrent_webhooks_share_a_close_and_record_their_own(
        case: Case, store: StateStore, make_settings: Callable[..., Settings], clock: FakeClock) -> None:
    fps = sorted({fp for r in case.requests for fp in r})
    for fp in fps:
        await arm(store, clock, fp)
    counting = Counting(store, case.script)
    recorder = Recorder()
    res = resolutions(counting, make_settings, recorder, clock)
    got = await asyncio.gather(*(_outcome(res, n, r) for n, r in enumerate(case.requests)))
    assert [(o, recorder.by_request.get(n, [])) for n, o in enumerate(got)] == case.want
    assert len(counting.calls) == case.calls
    reached = {fp for r, o in zip(case.requests, got, strict=True) if o is not StateError for fp in r}
    for fp in fps:  # closed exactly when a webhook's call went through; never twice (recorded once)
        approval = await store.get_approval(f"p-{fp}")
        assert approval is not None
        assert (approval.status is ApprovalStatus.CANCELLED) == (fp in reached), fp
        assert await store.claimed(resolved_marker(resolved(fp))) == (fp in reached), fp
        assert sum(x == f"p-{fp}" for rec in recorder.by_request.values() for x in rec) == (fp in reached)


async def test_a_group_is_at_most_group_max_firings(
        store: StateStore, make_settings: Callable[..., Settings], clock: FakeClock) -> None:
    counting = Counting(store, [])
    recorder = Recorder()
    res = resolutions(counting, make_settings, recorder, clock)
    big = [f"x{n}" for n in range(GROUP_MAX - 100)]
    requests = [big, [f"y{n}" for n in range(200)], ["z"]]
    got = await asyncio.gather(*(_outcome(res, n, r) for n, r in enumerate(requests)))
    assert got == ["ok", "ok", "ok"]
    assert counting.calls == [big, [*requests[1], "z"]]
    assert [len(recorder.by_request[n]) for n in range(3)] == [len(r) for r in requests]


async def test_closes_made_while_one_is_under_way_share_the_next(
        store: StateStore, make_settings: Callable[..., Settings], clock: FakeClock) -> None:
    for fp in "abc":
        await arm(store, clock, fp)
    gate = asyncio.Event()

    class Slow(Counting):
        async def close_resolved(self, firings: Sequence[Resolved], **kw: Any) -> list[Closed]:
            if not self.calls:
                await gate.wait()
            return await super().close_resolved(firings, **kw)

    slow = Slow(store, [])
    recorder = Recorder()
    res = resolutions(slow, make_settings, recorder, clock)
    first = asyncio.create_task(_outcome(res, 0, "a"))
    for _ in range(3):
        await asyncio.sleep(0)
    later = [asyncio.create_task(_outcome(res, n, r)) for n, r in ((1, "b"), (2, "ca"))]
    for _ in range(3):
        await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(first, *later) == ["ok", "ok", "ok"]
    assert slow.calls == [["a"], ["b", "c", "a"]]
    assert [recorder.by_request[n] for n in range(3)] == [ok("a")[1], ok("b")[1], [*ok("c")[1], "r-a"]]


async def test_a_redis_failing_part_way_through_a_shared_close_gives_each_webhook_its_own_part(
        clock: FakeClock, make_settings: Callable[..., Settings]) -> None:
    """The approvals' script fails on Redis (a key of the wrong type, under the first webhook's
    alert): both webhooks' timers were taken, each webhook records just its own and answers 503
    (``PartlyClosed``); the second's re-send, alone, cancels its approval and records it once."""
    from receiver.store.redis.store import RedisStateStore  # noqa: PLC0415

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    store = RedisStateStore(REDIS_URL, clock=clock, prefix=prefix)
    await store.open()
    client = raw_client(REDIS_URL)
    try:
        for fp in "ab":
            await arm(store, clock, fp)
        await client.set(store._core.key("approvals", "approvals", "pending", "a"), "not a set")
        counting = Counting(store, [])
        recorder = Recorder()
        res = resolutions(counting, make_settings, recorder, clock)
        got = await asyncio.gather(_outcome(res, 0, "a"), _outcome(res, 1, "b"))
        assert list(got) == [PartlyClosed, PartlyClosed]
        assert counting.calls == [["a", "b"]]
        assert recorder.by_request == {0: ["t-a"], 1: ["t-b"]}
        assert await _outcome(res, 2, "b") == "ok"
        assert recorder.by_request[2] == ["p-b", "r-b"]
        assert await store.claimed(resolved_marker(resolved("b")))
    finally:
        await client.aclose()
        await store.close()
        await drop_prefix(prefix)
