"""receiver.flow.eager: a time limit whose timer is armed only once the coroutine waits."""

from __future__ import annotations

import asyncio

import pytest

from receiver.flow.eager import within


async def quick() -> str:
    return "planned"


async def waits(seconds: float, *, steps: int = 1) -> str:
    for _ in range(steps):
        await asyncio.sleep(seconds / steps)
    return "read"


async def fails() -> str:
    raise ValueError("bad")


async def waits_then_fails() -> str:
    await asyncio.sleep(0)
    raise ValueError("bad later")


def timers() -> int:
    return len(asyncio.get_running_loop()._scheduled)  # type: ignore[attr-defined]


async def test_a_coroutine_that_never_waits_arms_no_timer() -> None:
    before = timers()
    assert await within(quick(), 5) == "planned"
    assert timers() == before


@pytest.mark.parametrize(("seconds", "steps", "limit", "outcome"), [
    (0.01, 1, 5, "read"),
    (0.01, 3, 5, "read"),
    (1.0, 1, 0.05, TimeoutError),
    (1.0, 10, 0.05, TimeoutError),
])
async def test_a_coroutine_that_waits_has_its_limit(seconds: float, steps: int, limit: float,
                                                     outcome: object) -> None:
    if outcome is TimeoutError:
        with pytest.raises(TimeoutError):
            await within(waits(seconds, steps=steps), limit)
    else:
        assert await within(waits(seconds, steps=steps), limit) == outcome


@pytest.mark.parametrize("coro", [fails, waits_then_fails])
async def test_what_the_coroutine_raises_comes_out(coro: object) -> None:
    with pytest.raises(ValueError, match="bad"):
        await within(coro(), 5)  # type: ignore[operator]


async def test_a_cancellation_reaches_the_coroutine() -> None:
    reached: list[str] = []

    async def held() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            reached.append("cancelled")
            raise
        return "never"

    task = asyncio.create_task(within(held(), 30))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached == ["cancelled"]
