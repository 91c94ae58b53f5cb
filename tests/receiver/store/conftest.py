"""The store tests' private Redis Cluster (three masters started once per session, stopped by PID),
and ``make_store``: the contract suites' stores (SQLite, Redis, the Cluster) sharing one backing state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from receiver.store.protocol import StateStore
from receiver.store.sqlite.store import SqliteStateStore
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix
from tests.support.redisnodes import start_cluster


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """``redis+cluster://…`` of a three-master Redis Cluster on free ports (about 2 s to start)."""
    try:
        nodes = start_cluster()
    except (OSError, RuntimeError) as exc:
        pytest.fail(f"the private Redis Cluster could not start: {exc}")
    yield nodes.url
    nodes.stop()


StoreFactory = Callable[[], StateStore]


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[StoreFactory]:
    """Opens stores sharing one backing state (two replicas, or one process restarted)."""
    opened: list[StateStore] = []
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    url = request.getfixturevalue("cluster_url") if request.param == "redis-cluster" else REDIS_URL

    def build() -> StateStore:
        if request.param == "sqlite":
            store: StateStore = SqliteStateStore(tmp_path / "state.db", clock=clock)
        else:
            from receiver.store.redis.store import RedisStateStore  # noqa: PLC0415

            store = RedisStateStore(url, clock=clock, prefix=prefix)
        opened.append(store)
        return store

    yield build
    for store in opened:
        await store.close()
    if request.param != "sqlite":
        await drop_prefix(prefix, url)


async def opened(factory: StoreFactory) -> StateStore:
    store = factory()
    await store.open()
    return store
