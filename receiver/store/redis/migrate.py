"""Moving an older deployment's Redis keys to the hash-tagged layout, once, when the store opens.

Called by ``receiver.store.redis.store.RedisStateStore.open`` before anything else. Before
this layout every key was ``PREFIX:NAME…``; now it is ``{PREFIX:PART}:NAME…``
(``receiver.store.redis.core.RedisCore.key``), so a store opening on a Redis an older
version used finds its queued work, claims, pause, budgets, circuits, locks, approvals
and timers under the old names. Each is moved to its new name (same value, same TTL):
``RENAME`` inside one script on one server or Sentinel master, ``DUMP``/``RESTORE`` on a
Redis Cluster (the two names hash to different slots). Nothing is dropped: a key whose new
name is taken already stops the open with a StateError naming both.

An older replica still running would go on writing the old names, so the move fences
them out: the old stream's name becomes a string (the older version's enqueue and take
fail with WRONGTYPE: its webhooks answer 503 and Alertmanager resends them to a replica of
this version) and the old pause key holds a pause (the older version acts on nothing).
``{PREFIX:guards}:layout`` records that the move is done, so later opens skip the scan.
"""

from __future__ import annotations

import json
from typing import Any

from redis.exceptions import ResponseError

from receiver.errors import StateError
from receiver.store.redis.core import RedisCore

LAYOUT = "2"
FENCE = ("this Redis was moved to the hash-tagged key layout ({PREFIX:PART}:...) by a newer remediator: "
         "stop every replica of the older version")
# The first name after ``PREFIX:`` in the older layout -> the part whose tag the key gets now.
FAMILIES = {
    "work": "queue", "dedup": "queue",
    "pause": "guards", "cooldown": "guards", "rate": "guards", "blast": "guards", "circuit": "guards",
    "lock": "guards", "fence": "guards",
    "approval": "approvals", "approvals": "approvals",
    "timer": "timers", "timers": "timers", "occ": "timers",
}

_MOVE = """
-- KEYS: old name, new name. ARGV: what to leave at the old name ('' for nothing).
-- Returns 1 moved, 0 gone already (moved by another replica opening), -1 both names taken.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


def new_name(core: RedisCore, old: str) -> str | None:
    """The hash-tagged name of an older-layout key, or None when the key is not the store's."""
    rest = old.removeprefix(f"{core.prefix}:")
    part = FAMILIES.get(rest.split(":", 1)[0])
    return None if part is None else f"{core.key(part)}:{rest}"


def _fence(core: RedisCore, rest: str) -> str:
    """What stays at an older name once it is moved: a fence for ``work`` and ``pause``, else nothing."""
    if rest == "work":
        return FENCE
    if rest == "pause":
        return json.dumps({"source": "admin", "actor": "remediator", "detail": FENCE,
                           "since": core.clock.now()})
    return ""


async def _is_fence(core: RedisCore, old: str) -> bool:
    rest = old.removeprefix(f"{core.prefix}:")
    if rest not in ("work", "pause"):
        return False
    if await core.cmd("TYPE", old) != "string":
        return False
    return FENCE in (await core.cmd("GET", old) or "")


async def _move_on_cluster(core: RedisCore, old: str, new: str, fence: str) -> int:
    conn = core.conn()
    dumped = await conn.dump(old)
    if dumped is None:
        return 0
    ttl = max(int(await conn.pttl(old)), 0)
    try:
        await conn.restore(new, ttl, dumped)
    except ResponseError as exc:
        if "BUSYKEY" not in str(exc) or await conn.dump(new) != dumped:
            return -1
    if fence:
        await conn.set(old, fence)
    else:
        await conn.delete(old)
    return 1


async def _move(core: RedisCore, old: str, new: str, fence: str) -> int:
    if core.cluster:
        return await _move_on_cluster(core, old, new, fence)
    script = core.conn().register_script(_MOVE)
    return int(await script(keys=[old, new], args=[fence]))


async def migrate(core: RedisCore) -> int:
    """Move every older-layout key of ``core``'s prefix to its new name; how many moved."""
    marker = core.key("guards", "layout")
    with core.errors():
        if await core.cmd("GET", marker) == LAYOUT:
            return 0
        conn: Any = core.conn()
        found = [k async for k in conn.scan_iter(match=f"{core.prefix}:*", count=1000)]
        moved = 0
        for old in sorted(found):
            new = new_name(core, old)
            if new is None or await _is_fence(core, old):
                continue
            done = await _move(core, old, new, _fence(core, old.removeprefix(f"{core.prefix}:")))
            if done < 0:
                raise StateError(
                    f"redis state store {core.safe_url}: both {old!r} (the older key layout) and {new!r} "
                    "hold data: a replica of the older version may still be running. Stop every older "
                    "replica, keep the one of the two keys that is current (DEL the other), then start again")
            moved += done
        await core.write("SET", marker, LAYOUT)  # with replicas=N, also waits for the moves above
    return moved
