"""The application factory: one ``create_app`` builds the service, for serve and tests alike.

Called by ``receiver.http.server`` and by the test suite (through pytest-aiohttp). Resources
open in a cleanup context, so a failed start never runs a half-built shutdown, and
every shared object lives on the one :class:`receiver.runtime.Runtime` under a typed key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry

from receiver.clock import Clock, SystemClock
from receiver.http.auth import Authenticator
from receiver.http.console import add_console_routes
from receiver.http.handlers import add_routes
from receiver.http.keys import RUNTIME
from receiver.http.middlewares import AUTHENTICATOR, authenticate, errors, screen, track
from receiver.http.slack import add_slack_routes
from receiver.runtime import Runtime
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from remediations.registry import Registry, default_registry


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    await runtime.start()
    yield
    await runtime.stop()


async def _stop_intake(app: web.Application) -> None:
    app[RUNTIME].begin_drain()


def create_app(
    settings: Settings,
    *,
    registry: Registry | None = None,
    clock: Clock | None = None,
    metrics_registry: CollectorRegistry | None = None,
    state: StateStore | None = None,
) -> web.Application:
    """Build the service; nothing runs until the app starts."""
    runtime = Runtime(
        settings,
        registry=registry or default_registry(),
        clock=clock or SystemClock(),
        metrics_registry=metrics_registry,
        state=state,
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[track, errors, authenticate, screen],
        handler_args={"auto_decompress": False},  # receiver.http.body decodes, all or nothing
    )
    app[RUNTIME] = runtime
    app[AUTHENTICATOR] = Authenticator(settings.auth)
    add_routes(app)
    if settings.slack is not None:
        add_slack_routes(app, settings.slack)
    if settings.console.enabled:
        add_console_routes(app)
    app.on_shutdown.append(_stop_intake)
    app.cleanup_ctx.append(_lifecycle)
    return app
