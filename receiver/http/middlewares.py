"""Request middlewares: connection tracking, JSON errors for everything, role checks, then the
body read whole (or refused) before any handler.

Installed by ``receiver.http.app.create_app``, in this order: :func:`track` (tells
``receiver.http.connections`` a request is being handled), :func:`errors`,
:func:`authenticate`, :func:`screen`. A handler declares the role it needs with
:func:`requires`; routes without it (health, readiness, metrics) are open. :func:`screen`
refuses what no handler should see: a state-changing request to a route with a role that a
browser sent from another site (403) or whose body is not JSON (415: a body of any
Content-Type but ``application/json``, or none; and what another site's form posts without
asking, urlencoded, multipart or ``text/plain``, even empty); then it
reads the body whole (``receiver.http.body``: a body that is not what it claims, too large
or too slow is refused there, 400, 413, 415 or 408).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from receiver.decisions import Rejection
from receiver.http.auth import Authenticator, BadCredentials, Need, Principal
from receiver.http.body import read_body
from receiver.http.keys import GATE, RUNTIME
from receiver.http.origin import ForeignOrigin, check_origin, external_origin

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
    request.app[RUNTIME].metrics.rejected[reason].inc()
    _log.info("request.rejected", path=request.path, status=status, reason=reason, detail=detail)
    return error_response(status, reason, detail, **extra)


_STATUS_REASONS = {404: Rejection.NOT_FOUND, 405: Rejection.METHOD_NOT_ALLOWED,
                   413: Rejection.TOO_LARGE}
_KEPT_HEADERS = ("Allow", "Retry-After")


@web.middleware
async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection gate (serve's; none in-process) a request is being handled until the
    task answering it ends (its answer written)."""
    gate = request.app.get(GATE)
    if gate is not None:
        gate.reading(request.protocol, asyncio.current_task())
    return await handler(request)


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
    except ConnectionError:  # the client went away mid-request: nothing to log, nobody to answer
        return error_response(400, "connection_lost", "the connection was lost")
    except Exception:
        _log.exception("request.failed", path=request.path)
        return error_response(500, "internal_error", "internal error; see the server log")
    if response.status == 413:
        response.force_close()
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse callers without valid credentials (401, with why), with two ``Authorization``
    headers (400) or without the role (403)."""
    need: Need | None = getattr(request.match_info.handler, "required_role", None)
    if need is None:
        return await handler(request)
    auth = request.app[AUTHENTICATOR]
    principal = auth.identify(request.headers.getall("Authorization", []))
    if isinstance(principal, BadCredentials):
        if principal.status == 400:
            return reject(request, 400, Rejection.AMBIGUOUS_CREDENTIALS, principal.detail)
        response = reject(request, 401, Rejection.UNAUTHORIZED, principal.detail)
        response.headers["WWW-Authenticate"] = auth.challenge
        return response
    if not principal.may(need):
        return reject(request, 403, Rejection.FORBIDDEN,
                      f"credential {principal.name!r} (role {principal.role}) may not call {request.path}")
    request[PRINCIPAL] = principal
    return await handler(request)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def caller_is_admin(request: web.Request) -> bool:
    """Whether the request carries valid admin credentials (open routes check it themselves)."""
    principal = request.get(PRINCIPAL) or request.app[AUTHENTICATOR].identify(
        request.headers.getall("Authorization", []))
    return isinstance(principal, Principal) and principal.may("admin")


def public(request: web.Request, detail: str) -> str:
    """``detail`` for an admin; for anyone else only what it says before its first ``": "``
    (``state store unavailable``, not the store's address or the audit file's path)."""
    return detail if caller_is_admin(request) else detail.partition(": ")[0]


# What an HTML form on any site can send without asking (a CORS "simple" request).
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})


def _json_or_nothing(request: web.Request) -> bool:
    """A state change carries a JSON body, or no body and no form's Content-Type."""
    if request.content_type in _FORM_TYPES:
        return False
    return request.content_type == "application/json" or not request.body_exists


def _not_json(request: web.Request) -> web.Response:
    detail = (f"Content-Type must be application/json, not {request.content_type!r}"
              if "Content-Type" in request.headers else "a body needs Content-Type: application/json")
    return reject(request, 415, Rejection.UNSUPPORTED_MEDIA_TYPE, detail)


def _closing(response: web.Response) -> web.Response:
    response.force_close()
    return response


@web.middleware
async def screen(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse cross-site and non-JSON state changes, read the body whole, then hand over."""
    runtime = request.app[RUNTIME]
    role = getattr(request.match_info.handler, "required_role", None)
    if role is not None and request.method not in _SAFE_METHODS:
        try:
            check_origin(request, external_origin(runtime.settings.console.external_url), required=False)
        except ForeignOrigin as exc:
            return reject(request, 403, Rejection.FOREIGN_ORIGIN, str(exc))
        if not _json_or_nothing(request):
            return _closing(_not_json(request))
    if request.body_exists and request.match_info.http_exception is None:
        settings = runtime.settings
        refusal = await read_body(request, limit=settings.max_body_bytes,
                                  within=settings.http.body_timeout.total_seconds())
        if refusal is not None:
            response = reject(request, refusal.status, refusal.reason, refusal.detail)
            return _closing(response) if refusal.close else response
    gate = request.app.get(GATE)
    if gate is not None:
        gate.working(request.protocol)
    return await handler(request)
