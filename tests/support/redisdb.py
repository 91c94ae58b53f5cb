"""The local Redis the tests use, and cleanup of a test's own key prefix (on a server or a Cluster)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

REDIS_URL = "redis://127.0.0.1:6379/0"


def raw_client(url: str) -> Any:
    """A plain client (strings, not bytes) on a ``redis://`` server or a ``redis+cluster://`` Cluster."""
    if url.startswith("redis+cluster://"):
        nodes = url.removeprefix("redis+cluster://").split("/")[0].split(",")
        return RedisCluster(startup_nodes=[ClusterNode(n.rpartition(":")[0], int(n.rpartition(":")[2]))
                                           for n in nodes], decode_responses=True)
    return aioredis.from_url(url, decode_responses=True)


async def drop_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key of ``prefix`` (a test's own, unique prefix): ``{prefix:PART}:…`` and the older
    layout's ``prefix:…``."""
    client = raw_client(url)
    try:
        for pattern in (f"{{{prefix}:*", f"{prefix}:*"):
            keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
            for key in keys:  # one at a time: on a Cluster they are in different slots
                await client.delete(key)
    finally:
        await client.aclose()
