"""``redis.diagnose`` and ``redis.flushdb`` against the real local Redis: one DB flushed, no other.

The tests own logical DB 15 (flushed) and write to DBs 14 and 0 only under a unique key
prefix, removed at the end; the flush test first checks that DB 15 holds nothing but its
own keys, so it can never wipe someone else's.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from remediations.base import (
    Action,
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.redis import RedisDiagnose, RedisFlushDb
from remediations.secrets import Secret
from remediations.targets import PostgresTarget, RedisTarget
from rules.alert import Alert
from rules.model import ActionSpec
from tests.support.sdkpool import SDK_CALLS

URL = "redis://127.0.0.1:6379/0"  # the URL names db 0: the action's db param must still win
OWNED_DB = 15
OTHER_DB = 14


def target(dbs: list[int], url: str = URL) -> RedisTarget:
    return RedisTarget(kind="redis", url=Secret(url, "env:CACHE_REDIS_URL"), dbs=dbs)


def ctx(tgt: RedisTarget | PostgresTarget, **labels: str) -> ActionContext:
    alert = Alert(fingerprint="abc", status="firing", labels={"alertname": "X", **labels}, annotations={},
                  starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z")
    return ActionContext(calls=SDK_CALLS,
                         decision_id="d", rule="r", alert=alert, target_name="cache", target=tgt,
                         dry_run=False)


class Keys:
    """This test's keys, under a unique prefix, in any logical DB."""

    def __init__(self) -> None:
        self.prefix = f"rmd-redis-test:{uuid.uuid4().hex[:12]}"
        self.clients: dict[int, aioredis.Redis] = {}

    def db(self, number: int) -> aioredis.Redis:
        if number not in self.clients:
            self.clients[number] = aioredis.Redis(host="127.0.0.1", port=6379, db=number,
                                                  decode_responses=True)
        return self.clients[number]

    async def put(self, number: int, count: int) -> list[str]:
        names = [f"{self.prefix}:{number}:{i}" for i in range(count)]
        await self.db(number).mset(dict.fromkeys(names, "v"))
        return names

    async def mine(self, number: int) -> set[str]:
        return {k async for k in self.db(number).scan_iter(match=f"{self.prefix}:*")}

    async def foreign(self, number: int) -> list[str]:
        return [k async for k in self.db(number).scan_iter() if not k.startswith(self.prefix)]

    async def close(self) -> None:
        for client in self.clients.values():
            mine = [k async for k in client.scan_iter(match=f"{self.prefix}:*")]
            if mine:
                await client.delete(*mine)
            await client.aclose()


@pytest.fixture
async def keys() -> AsyncIterator[Keys]:
    k = Keys()
    try:
        yield k
    finally:
        await k.close()


async def own_db(keys: Keys) -> None:
    """Fail, rather than flush, if anyone else keeps keys in the DB this module owns."""
    foreign = await keys.foreign(OWNED_DB)
    assert foreign == [], f"db {OWNED_DB} holds keys this test did not write: {foreign[:5]}"


# -- params, allow-list, identity (no server) ------------------------------------------------

@pytest.mark.parametrize(("action", "raw", "db"), [
    pytest.param(RedisDiagnose(), {}, 0, id="diagnose-default-db"),
    pytest.param(RedisDiagnose(), {"db": 3}, 3, id="diagnose-db"),
    pytest.param(RedisFlushDb(), {"db": 15}, 15, id="flush-db"),
    pytest.param(RedisFlushDb(), {"db": "15"}, 15, id="flush-templated-string"),
])
def test_good_params_are_accepted(action: Action[Any], raw: dict[str, Any], db: int) -> None:
    """A db number, or the string a template renders, parses to the DB number."""
    assert action.parse_params(raw).db == db


@pytest.mark.parametrize(("action", "raw"), [
    pytest.param(RedisFlushDb(), {}, id="flush-needs-a-db"),
    pytest.param(RedisFlushDb(), {"db": -1}, id="negative"),
    pytest.param(RedisFlushDb(), {"db": 65536}, id="too-high"),
    pytest.param(RedisFlushDb(), {"db": "x"}, id="not-a-number"),
    pytest.param(RedisFlushDb(), {"db": 1.5}, id="fraction"),
    pytest.param(RedisFlushDb(), {"db": True}, id="boolean"),
    pytest.param(RedisFlushDb(), {"db": 1, "all": True}, id="unknown-param"),
    pytest.param(RedisDiagnose(), {"db": "0 OR 1"}, id="diagnose-junk"),
])
def test_bad_params_are_refused(action: Action[Any], raw: dict[str, Any]) -> None:
    """Bad params are InvalidParams naming the action."""
    with pytest.raises(InvalidParams, match=rf"^{action.name}: "):
        action.parse_params(raw)


@pytest.mark.parametrize("action", [RedisDiagnose(), RedisFlushDb()], ids=lambda a: a.name)
async def test_a_label_cannot_steer_outside_the_dbs(action: Action[Any]) -> None:
    """A db rendered from a label must be in the target's dbs; plan refuses it too, before connecting."""
    spec = ActionSpec(action=action.name, target="cache", params={"db": "{{ labels.db }}"})
    c = ctx(target([OWNED_DB], url="redis://127.0.0.1:1"), db="0")
    params = action.parse_params(spec.render_params(c.alert))
    with pytest.raises(TargetNotAllowed, match=r"^db 0 is not among the dbs of target 'cache' \(15\)$"):
        action.check_allowed(c, params)
    with pytest.raises(TargetNotAllowed):
        await action.plan(c, params)
    action.check_allowed(c, params.model_copy(update={"db": OWNED_DB}))


@pytest.mark.parametrize("action", [RedisDiagnose(), RedisFlushDb()], ids=lambda a: a.name)
def test_a_target_of_another_kind_is_refused(action: Action[Any]) -> None:
    """A postgres target for a redis action is a PermanentError."""
    pg = PostgresTarget(kind="postgres", dsn=Secret("host=x", "env:PG"), databases=["a"])
    with pytest.raises(PermanentError, match="needs a redis target"):
        action.check_allowed(ctx(pg), action.parse_params({"db": 1}))


def test_identity_and_flags() -> None:
    """Subject is target/db; flushdb is destructive and always needs approval; diagnose only reads."""
    flush = RedisFlushDb()
    assert flush.subject(ctx(target([3])), flush.parse_params({"db": 3})) == "cache/db/3"
    assert RedisFlushDb.destructive
    assert RedisFlushDb.approval_always
    assert RedisDiagnose.read_only
    assert not RedisDiagnose.destructive
    assert "+flushdb" in " ".join(RedisFlushDb.permissions)
    assert "flushall" not in " ".join(RedisFlushDb.permissions).lower()


# -- against the real server ------------------------------------------------------------------

async def test_flushdb_empties_exactly_its_db(keys: Keys) -> None:
    """Plan reads DBSIZE and changes nothing; execute empties db 15; db 14 and the URL's db 0 keep theirs."""
    await own_db(keys)
    flushed = await keys.put(OWNED_DB, 3)
    kept_other = await keys.put(OTHER_DB, 2)
    kept_zero = await keys.put(0, 2)

    action = RedisFlushDb()
    params = action.parse_params({"db": OWNED_DB})
    c = ctx(target([OTHER_DB, OWNED_DB]))
    action.check_allowed(c, params)
    plan = await action.plan(c, params)
    assert plan.steps == (f"FLUSHDB ASYNC of db {OWNED_DB} on cache: deletes all 3 keys it holds now "
                          "(the other dbs are untouched)",)
    assert plan.destructive
    assert plan.details == {"db": OWNED_DB, "dbsize": 3}
    assert await keys.mine(OWNED_DB) == set(flushed)  # plan only read

    result = await action.execute(c, params, plan)
    assert result.details == {"db": OWNED_DB, "dbsize_before": 3, "dbsize_after": 0}
    assert await keys.db(OWNED_DB).dbsize() == 0
    assert await keys.mine(OTHER_DB) == set(kept_other)
    assert await keys.mine(0) == set(kept_zero)


@pytest.mark.parametrize("url", [
    pytest.param("redis://127.0.0.1:6379/14", id="path-db"),
    pytest.param("redis://127.0.0.1:6379?db=14", id="query-db"),
])
async def test_a_db_in_the_url_never_redirects_the_flush(keys: Keys, url: str) -> None:
    """The target URL naming db 14 does not make a flush of db 15 touch db 14."""
    await own_db(keys)
    await keys.put(OWNED_DB, 1)
    kept = await keys.put(OTHER_DB, 2)
    action = RedisFlushDb()
    params = action.parse_params({"db": OWNED_DB})
    c = ctx(target([OWNED_DB], url=url))
    await action.execute(c, params, await action.plan(c, params))
    assert await keys.db(OWNED_DB).dbsize() == 0
    assert await keys.mine(OTHER_DB) == set(kept)


async def test_diagnose_reports_memory_keys_and_clients(keys: Keys) -> None:
    """Diagnose plans without connecting and returns INFO figures and the DB's DBSIZE, changing nothing."""
    await own_db(keys)
    written = await keys.put(OWNED_DB, 4)
    action = RedisDiagnose()
    params = action.parse_params({"db": OWNED_DB})
    c = ctx(target([OWNED_DB]))
    plan = await action.plan(c, params)
    assert plan.steps == ("INFO memory, INFO stats, INFO clients", f"DBSIZE of db {OWNED_DB}")
    assert not plan.destructive
    result = await action.execute(c, params, plan)
    d = result.details
    assert d["db"] == OWNED_DB
    assert d["dbsize"] == 4
    assert isinstance(d["used_memory"], int)
    assert isinstance(d["used_memory_human"], str)
    assert isinstance(d["maxmemory"], int)
    assert isinstance(d["mem_fragmentation_ratio"], float)
    assert isinstance(d["evicted_keys"], int)
    assert d["connected_clients"] >= 2  # this test's own client and the action's
    assert isinstance(d["blocked_clients"], int)
    assert result.summary.startswith(f"db {OWNED_DB}: 4 keys; memory ")
    assert await keys.mine(OWNED_DB) == set(written)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("url", "db", "error"), [
    pytest.param(lambda: f"redis://127.0.0.1:{closed_port()}", OWNED_DB, TemporaryError, id="refused"),
    pytest.param(lambda: "redis://rmd-nobody:wrong@127.0.0.1:6379", OWNED_DB, PermanentError,
                 id="wrong-credentials"),
    pytest.param(lambda: "redis://127.0.0.1:6379", 999, PermanentError, id="db-index-out-of-range"),
    pytest.param(lambda: "http://:s3cr3t@127.0.0.1:6379", OWNED_DB, PermanentError, id="not-a-redis-url"),
    pytest.param(lambda: "redis://:s3cr3t@127.0.0.1:port", OWNED_DB, PermanentError, id="malformed-url"),
])
@pytest.mark.parametrize("action", [RedisDiagnose(), RedisFlushDb()], ids=lambda a: a.name)
async def test_failures_are_classified(url: Any, db: int, error: type[Exception],
                                       action: Action[Any]) -> None:
    """Refused is temporary; bad credentials, a missing DB, a bad URL are permanent; no password shows."""
    c = ctx(target([db], url=url()))
    params = action.parse_params({"db": db})
    plan = Plan(action=action.name, target="cache", steps=(), destructive=True, details={"db": db})
    with pytest.raises(error) as caught:
        await action.execute(c, params, plan)
    assert type(caught.value) is error
    assert str(caught.value).startswith(f"{action.name}")
    assert "s3cr3t" not in str(caught.value)
