"""Request middlewares: JSON errors for everything, and role checks before handlers.

Installed by ``receiver.http.app.create_app``. A handler declares the role it needs with
:func:`requires`; routes without it (health, readiness, metrics) are open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from receiver.decisions import Rejection
from receiver.http.auth import Authenticator, Need, Principal
from receiver.http.keys import RUNTIME

_log = structlog.get_logger("remediator.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL = web.RequestKey("principal", Principal)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


def requires(need: Need) -> Callable[[Handler], Handler]:
    """Mark a handler as needing a caller whose role grants ``need``."""

    def mark(handler: Handler) -> Handler:
        handler.required_role = need  # type: ignore[attr-defined]
        return handler

    return mark


def error_response(status: int, reason: Rejection | str, detail: str, **extra: Any) -> web.Response:
    """The one shape of every error answer: ``{"error", "detail", ...}``."""
    return web.json_response({"error": str(reason), "detail": detail, **extra}, status=status)


def reject(request: web.Request, status: int, reason: Rejection, detail: str,
           **extra: Any) -> web.Response:
    """Count and log a refused request, and answer it."""
    request.app[RUNTIME].metrics.requests_rejected.labels(reason.value).inc()
    _log.info("request.rejected", path=request.path, status=status, reason=reason, detail=detail)
    return error_response(status, reason, detail, **extra)


_STATUS_REASONS = {404: Rejection.NOT_FOUND, 405: Rejection.METHOD_NOT_ALLOWED,
                   413: Rejection.TOO_LARGE}
_KEPT_HEADERS = ("Allow", "Retry-After")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render aiohttp's own errors as JSON and never leak a traceback.

    A 413 also closes the connection: the rest of that body is never read, so the client
    must not send its next request on the same connection behind it.
    """
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = _STATUS_REASONS.get(exc.status)
        if reason is None:
            response = error_response(exc.status, exc.reason.lower().replace(" ", "_"),
                                      exc.text or exc.reason)
        else:
            response = reject(request, exc.status, reason, exc.text or exc.reason)
        for name in _KEPT_HEADERS:  # a 405 must say what is allowed (RFC 9110 §15.5.6)
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
    except Exception:
        _log.exception("request.failed", path=request.path)
        return error_response(500, "internal_error", "internal error; see the server log")
    if response.status == 413:
        response.force_close()
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse callers without valid credentials (401) or without the role (403)."""
    need: Need | None = getattr(request.match_info.handler, "required_role", None)
    if need is None:
        return await handler(request)
    auth = request.app[AUTHENTICATOR]
    principal = auth.authenticate(request.headers.get("Authorization"))
    if principal is None:
        response = reject(request, 401, Rejection.UNAUTHORIZED, "missing or invalid credentials")
        response.headers["WWW-Authenticate"] = auth.challenge
        return response
    if not principal.may(need):
        return reject(request, 403, Rejection.FORBIDDEN,
                      f"credential {principal.name!r} (role {principal.role}) may not call {request.path}")
    request[PRINCIPAL] = principal
    return await handler(request)
