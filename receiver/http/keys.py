"""Every ``web.AppKey`` of the application, in one place (aiohttp typed app state)."""

from __future__ import annotations

from aiohttp import web

from receiver.http.connections import ConnectionGate
from receiver.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
GATE = web.AppKey("connection_gate", ConnectionGate)
"""Set by ``receiver.http.server`` (serve); apps built for in-process tests have none."""
