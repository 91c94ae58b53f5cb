"""HTTP handlers: thin — decode, hand to intake or the coordinator, answer.

Registered by ``receiver.http.app.create_app``. Domain errors become HTTP answers here and
only here: a bad body is 400 with the JSON path, a full queue or an unreachable store is
503 (Alertmanager sends again), and a remediation's failure never reaches this layer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from receiver.decisions import Rejection
from receiver.errors import Unavailable
from receiver.flow.payload import PayloadError, parse_webhook
from receiver.http.api import add_api_routes
from receiver.http.keys import RUNTIME
from receiver.http.middlewares import PRINCIPAL, error_response, reject, requires
from receiver.http.openapi import add_openapi_route
from receiver.http.selfwatch import refresh

_JSON_TYPES = frozenset({"application/json"})


@requires("webhook")
async def webhook(request: web.Request) -> web.Response:
    """``POST /webhook``: Alertmanager's notification, answered 202 in milliseconds."""
    runtime = request.app[RUNTIME]
    started = time.perf_counter()
    if runtime.draining or runtime.store_waiter.problem is not None:
        why = "shutting down" if runtime.draining else f"state store {runtime.store_waiter.problem}"
        response = reject(request, 503, Rejection.UNAVAILABLE, f"{why}; send again")
        response.headers["Retry-After"] = "5"
        return response
    if request.content_type not in _JSON_TYPES:
        return reject(request, 415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                      f"Content-Type must be application/json, not {request.content_type!r}")
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        return reject(request, 415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                      f"JSON must be UTF-8, not charset {request.charset!r}")
    limit = runtime.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return reject(request, 413, Rejection.TOO_LARGE,
                      f"body of {request.content_length} bytes is over the limit of {limit}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return reject(request, 413, Rejection.TOO_LARGE, f"body is over the limit of {limit} bytes")
    try:
        message, alerts = parse_webhook(body)
    except PayloadError as exc:
        reason = Rejection.INVALID_JSON if exc.kind == "invalid_json" else Rejection.INVALID_PAYLOAD
        return reject(request, 400, reason, exc.message, path=exc.path)
    try:
        summary = await runtime.intake.accept(message, alerts, actor=request[PRINCIPAL].name)
    except Unavailable as exc:
        response = reject(request, 503, Rejection.UNAVAILABLE, str(exc))
        response.headers["Retry-After"] = "5"
        return response
    runtime.metrics.webhook_latency.observe(time.perf_counter() - started)
    return web.json_response(
        {"received": summary.received, "matched": summary.matched, "queued": summary.queued},
        status=202,
    )


async def health(request: web.Request) -> web.Response:
    """``GET /health`` (and ``/-/healthy``): the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """``GET /ready`` (and ``/-/ready``): rules loaded and the state store reachable."""
    problems = await request.app[RUNTIME].readiness()
    if problems:
        return web.json_response({"ready": False, "problems": problems}, status=503)
    return web.json_response({"ready": True})


@requires("admin")
async def reload_rules(request: web.Request) -> web.Response:
    """``POST /-/reload``: load the rules again; on failure the old ones stay in force."""
    runtime = request.app[RUNTIME]
    report = await runtime.rules.reload(runtime.audit, actor=request[PRINCIPAL].name)
    problems = [str(p) for p in report.problems]
    if not report.ok:
        return error_response(422, "rules_invalid",
                              f"rules did not load; the {report.rules} rules in force stay",
                              problems=problems)
    return web.json_response({"ok": True, "rules": report.rules, "warnings": problems})


def _metrics_route(app: web.Application) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    exposition = make_aiohttp_handler(app[RUNTIME].metrics.registry)

    async def metrics(request: web.Request) -> web.StreamResponse:
        """``GET /metrics``: the self-monitoring gauges read now (``receiver.http.selfwatch``), then all."""
        await refresh(request.app[RUNTIME])
        return await exposition(request)

    return metrics


def add_routes(app: web.Application) -> None:
    """Every route of the service."""
    metrics = _metrics_route(app)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    # Prometheus' and Alertmanager's spellings, which SREs probe by habit.
    app.router.add_get("/-/healthy", health)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/-/reload", reload_rules)
    add_api_routes(app)
    add_openapi_route(app)
