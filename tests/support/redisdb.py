"""The local Redis the tests use, and cleanup of a test's own key prefix."""

from __future__ import annotations

import redis.asyncio as aioredis

REDIS_URL = "redis://127.0.0.1:6379/0"


async def drop_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key under ``prefix`` (a test's own, unique prefix)."""
    client = aioredis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
