"""A real local HTTP target for ``http.request``: scripted statuses, every call recorded.

Counting calls here is how tests prove an action ran exactly once (or never). A test that
sets ``hold`` keeps every call in flight (``entered`` set) until it sets ``hold``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

ServerFactory = Callable[..., Awaitable[TestServer]]


class Target:
    """A real HTTP server that answers with a scripted list of statuses and records calls."""

    def __init__(self, statuses: list[int], *, delay: float = 0.0) -> None:
        self.statuses = statuses
        self.delay = delay
        self.calls: list[tuple[str, str, Any, str | None]] = []
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.calls.append((request.method, request.path_qs, body, request.headers.get("X-Token")))
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses[min(len(self.calls), len(self.statuses)) - 1]
        return web.json_response({"seen": len(self.calls)}, status=status)


async def serve_target(aiohttp_server: ServerFactory, statuses: list[int] | None = None, *,
                       delay: float = 0.0) -> tuple[Target, str]:
    """Start a target; returns it and its base URL (``…/svc``)."""
    t = Target(statuses or [200], delay=delay)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", t.handle)
    server = await aiohttp_server(app)
    return t, str(server.make_url("/svc")).rstrip("/")
