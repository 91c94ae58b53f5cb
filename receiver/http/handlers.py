"""HTTP handlers: thin — decode, hand to intake or the coordinator, answer.

Registered by ``receiver.http.app.create_app``; the body is already read whole (or refused)
by ``receiver.http.middlewares.screen``. Domain errors become HTTP answers here and only
here: a bad body is 400 with the JSON path, a full queue or an unreachable store is 503
(Alertmanager sends again), and a remediation's failure never reaches this layer. What is
unavailable is said to every caller (``state store unavailable``); why, with addresses and
paths, only to admins (and the log): ``receiver.http.middlewares.public``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from receiver.audit import AuditError
from receiver.decisions import Rejection
from receiver.errors import Unavailable
from receiver.flow.payload import PayloadError, parse_webhook
from receiver.http.api import add_api_routes
from receiver.http.body import body_of
from receiver.http.keys import RUNTIME
from receiver.http.middlewares import PRINCIPAL, caller_is_admin, error_response, public, reject, requires
from receiver.http.openapi import add_openapi_route
from receiver.http.selfwatch import refresh

_JSON_TYPES = frozenset({"application/json"})
_PARSE_INLINE = 64 * 1024  # bytes: a larger body is decoded and validated off the event loop
_log = structlog.get_logger("remediator.http")
_READY_LOGGED = web.AppKey("ready_logged", list)
_ACCEPTED = b'{"received": %d, "matched": %d, "queued": %d}'


def _unavailable(request: web.Request, detail: str) -> web.Response:
    response = reject(request, 503, Rejection.UNAVAILABLE, public(request, detail))
    _log.info("request.unavailable", path=request.path, detail=detail)
    response.headers["Retry-After"] = "5"
    return response


@requires("webhook")
async def webhook(request: web.Request) -> web.Response:
    """``POST /webhook``: Alertmanager's notification, answered 202 in milliseconds."""
    runtime = request.app[RUNTIME]
    started = time.perf_counter()
    if runtime.draining:
        return _unavailable(request, "shutting down; send again")
    if runtime.store_waiter.problem is not None:
        problem, _, why = runtime.store_waiter.problem.partition(": ")
        return _unavailable(request, f"state store {problem}; send again: {why}")
    if request.content_type not in _JSON_TYPES:
        return reject(request, 415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                      f"Content-Type must be application/json, not {request.content_type!r}")
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        return reject(request, 415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                      f"JSON must be UTF-8, not charset {request.charset!r}")
    try:
        raw = body_of(request)
        if len(raw) <= _PARSE_INLINE:
            message, alerts = parse_webhook(raw)
        else:  # ~15 ms per 1,000 alerts: /health and other requests are answered meanwhile
            message, alerts = await asyncio.to_thread(parse_webhook, raw)
    except PayloadError as exc:
        reason = Rejection.INVALID_JSON if exc.kind == "invalid_json" else Rejection.INVALID_PAYLOAD
        return reject(request, 400, reason, exc.message, path=exc.path)
    try:
        summary = await runtime.intake.accept(message, alerts, actor=request[PRINCIPAL].name)
    except Unavailable as exc:
        return _unavailable(request, str(exc))
    runtime.metrics.webhook_latency.observe(time.perf_counter() - started)
    # What web.json_response gives for these three ints, byte for byte, without a JSON encoder.
    return web.Response(body=_ACCEPTED % (summary.received, summary.matched, summary.queued),
                        status=202, content_type="application/json", charset="utf-8")


async def health(request: web.Request) -> web.Response:
    """``GET /health`` (and ``/-/healthy``): the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """``GET /ready`` (and ``/-/ready``): rules loaded and the state store reachable.

    Anyone learns what is not ready (``state store: unavailable``); the details (the store's
    address, the audit file's path) go to admins and, once per change, to the log."""
    problems = await request.app[RUNTIME].readiness()
    if problems != request.app[_READY_LOGGED]:
        request.app[_READY_LOGGED][:] = problems
        if problems:
            _log.warning("ready.not", problems=problems)
    if not problems:
        return web.json_response({"ready": True})
    if not caller_is_admin(request):
        problems = [f"{what}: unavailable" if why else what
                    for what, _, why in (p.partition(": ") for p in problems)]
    return web.json_response({"ready": False, "problems": problems}, status=503)


@requires("admin")
async def reload_rules(request: web.Request) -> web.Response:
    """``POST /-/reload``: load the rules again; on failure the old ones stay in force."""
    runtime = request.app[RUNTIME]
    try:
        report = await runtime.rules.reload(runtime.audit, actor=request[PRINCIPAL].name)
    except AuditError as exc:  # the reload is done; its record waits for the audit log
        return _unavailable(request, f"audit log unavailable: {exc}")
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
    app[_READY_LOGGED] = []
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
