"""The redis-py clients a Redis state URL names: one server, a Redis Cluster, or a Sentinel-watched master.

Called by ``receiver.store.redis.core.RedisCore.connect`` with what
``receiver.stateurl.parse_redis_url`` read from the URL. Each store gets two clients of
the same kind: one for commands (a read timeout) and one for blocked reads while waiting
for work (none). No client retries a command on its own: a retried claim or enqueue whose
first try did run would answer "already claimed" or queue the work twice, so a failure
(a dropped connection, a failover under way) reaches the caller as a StateError. A Redis
Cluster's redirections (MOVED, ASK, TRYAGAIN) are still followed: the node answering them
ran nothing. Building a client connects to nothing; the first command does.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from receiver.stateurl import RedisUrl

CONNECT_TIMEOUT = 3.0


def _common() -> dict[str, Any]:
    return {"decode_responses": True, "socket_connect_timeout": CONNECT_TIMEOUT,
            "retry": Retry(NoBackoff(), 0)}


def _sentinel_clients(target: RedisUrl, timeouts: tuple[float | None, ...]) -> list[Any]:
    options: dict[str, Any] = dict(parse_url(target.url))
    tls = options.pop("connection_class", None) is SSLConnection
    for name in ("host", "port"):
        options.pop(name, None)
    on_sentinels: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": CONNECT_TIMEOUT,
        "retry": Retry(NoBackoff(), 0), "password": target.sentinel_password or None,
    }
    if tls:  # the sentinels speak TLS when the master does, with the same certificates
        on_sentinels.update({k: v for k, v in options.items() if k.startswith("ssl_")}, ssl=True)
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=on_sentinels)  # type: ignore[no-untyped-call]
    return [sentinel.master_for(target.service, ssl=tls, socket_timeout=timeout, **_common(), **options)
            for timeout in timeouts]


def make_clients(target: RedisUrl, *, read_timeout: float) -> tuple[Any, Any]:
    """The command client and the blocking client; ValueError or TypeError for options redis-py refuses."""
    timeouts = (read_timeout, None)
    made: list[Any]
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.nodes[1:]]
        made = [RedisCluster.from_url(target.url, startup_nodes=nodes, socket_timeout=timeout, **_common())
                for timeout in timeouts]
    elif target.kind == "sentinel":
        made = _sentinel_clients(target, timeouts)
    else:
        made = [aioredis.from_url(target.url, socket_timeout=timeout, **_common()) for timeout in timeouts]
    return made[0], made[1]
