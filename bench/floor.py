"""The floor: a bare aiohttp app whose POST handler reads and JSON-decodes the body, then 200.

Run by ``bench.run`` as ``python -m bench.floor`` (port 0; it prints ``listening PORT``).
What no Python receiver on aiohttp can beat; every remediator figure is a ratio to it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web


async def webhook(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def main() -> None:
    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print("listening", runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
