"""Every ``web.AppKey`` of the application, in one place (aiohttp typed app state)."""

from __future__ import annotations

from aiohttp import web

from receiver.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
