"""The ``/api/v1`` handlers people and the CLI use: approvals, the kill switch, circuit breakers.

Registered by ``receiver.http.handlers.add_routes``. Approvals need the ``approver`` role (or
``admin``); pausing, resuming and resetting a breaker need ``admin``. The caller's
credential name is the actor in the audit log. Bad input is a 400 naming the problem;
an unknown id 404; a decision the state forbids (approving an expired approval) 409. A
POST from a browser on another site, or with a body that is not JSON (a form, ``text/plain``),
never gets here (``receiver.http.middlewares.screen``: 403, 415).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web

from receiver.audit import AuditError
from receiver.errors import Conflict, NotFound, StateError
from receiver.http.body import body_of
from receiver.http.keys import RUNTIME
from receiver.http.middlewares import PRINCIPAL, error_response, public, requires
from receiver.store.values import ApprovalStatus, Pause

_MAX_TEXT = 1000
_log = structlog.get_logger("remediator.http")


def _body(request: web.Request, field: str) -> str | None:
    """The optional text ``field`` of a JSON object body (an empty body is fine)."""
    raw = body_of(request)
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        raise _bad("body is not JSON") from None
    if not isinstance(data, dict) or set(data) - {field}:
        raise _bad(f"body must be an object with at most the key {field!r}")
    value = data.get(field)
    if value is not None and (not isinstance(value, str) or len(value) > _MAX_TEXT):
        raise _bad(f"{field} must be a string of at most {_MAX_TEXT} characters")
    return value


def _bad(detail: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=detail)


def _pause_data(pause: Pause | None) -> dict[str, Any]:
    if pause is None:
        return {"paused": False}
    return {"paused": True, "source": pause.source, "actor": pause.actor, "detail": pause.detail,
            "since": pause.since}


def _unavailable(request: web.Request, exc: StateError | AuditError) -> web.Response:
    """503: the store or the audit log failed. A change the store took stays made; its audit
    record is kept and written with the next write that succeeds (an approved plan is queued
    again by ``Approvals.requeue_approved`` if its queueing was cut short)."""
    what = "audit log" if isinstance(exc, AuditError) else "state store"
    _log.warning("request.unavailable", path=request.path, detail=str(exc))
    response = error_response(503, "unavailable", public(request, f"{what} unavailable: {exc}"))
    response.headers["Retry-After"] = "5"
    return response


@requires("approver")
async def list_approvals(request: web.Request) -> web.Response:
    """``GET /api/v1/approvals[?status=pending]``: newest first."""
    raw = request.query.getall("status", [])
    try:
        statuses = [ApprovalStatus(s) for s in raw] or None
    except ValueError:
        return error_response(400, "invalid_query",
                              f"status must be one of {', '.join(s.value for s in ApprovalStatus)}")
    try:
        approvals = await request.app[RUNTIME].approvals.list(statuses)
    except (StateError, AuditError) as exc:
        return _unavailable(request, exc)
    return web.json_response({"approvals": [a.as_dict() for a in approvals]})


@requires("approver")
async def get_approval(request: web.Request) -> web.Response:
    """``GET /api/v1/approvals/{id}``."""
    try:
        approval = await request.app[RUNTIME].approvals.get(request.match_info["id"])
    except NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except (StateError, AuditError) as exc:
        return _unavailable(request, exc)
    return web.json_response(approval.as_dict())


async def _decide(request: web.Request, *, approve: bool) -> web.Response:
    comment = _body(request, "comment")
    runtime = request.app[RUNTIME]
    try:
        approval = await runtime.approvals.decide(request.match_info["id"], approve=approve,
                                                  actor=request[PRINCIPAL].name, comment=comment)
    except NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except Conflict as exc:
        return error_response(409, "conflict", str(exc))
    except (StateError, AuditError) as exc:
        return _unavailable(request, exc)
    return web.json_response(approval.as_dict())


@requires("approver")
async def approve(request: web.Request) -> web.Response:
    """``POST /api/v1/approvals/{id}/approve`` with an optional ``{"comment": …}``: queues the plan."""
    return await _decide(request, approve=True)


@requires("approver")
async def reject(request: web.Request) -> web.Response:
    """``POST /api/v1/approvals/{id}/reject`` with an optional ``{"comment": …}``."""
    return await _decide(request, approve=False)


@requires("admin")
async def pause_state(request: web.Request) -> web.Response:
    """``GET /api/v1/pause``: whether automation is paused, by whom and why."""
    try:
        return web.json_response(_pause_data(await request.app[RUNTIME].killswitch.state()))
    except (StateError, AuditError) as exc:
        return _unavailable(request, exc)


@requires("admin")
async def pause(request: web.Request) -> web.Response:
    """``POST /api/v1/pause`` with an optional ``{"reason": …}``: stop every live action."""
    reason = _body(request, "reason") or "paused by an admin"
    runtime = request.app[RUNTIME]
    try:
        changed = await runtime.killswitch.pause(actor=request[PRINCIPAL].name, detail=reason)
        state = await runtime.killswitch.state()
    except (StateError, AuditError) as exc:
        return _unavailable(request, exc)
    return web.json_response({"changed": changed, **_pause_data(state)})


@requires("admin")
async def resume(request: web.Request) -> web.Response:
    """``POST /api/v1/resume``: lift the pause (the admin's or the blast radius's)."""
    try:
        lifted = await request.app[RUNTIME].killswitch.resume(actor=request[PRINCIPAL].name)
    except (StateError, AuditError) as exc:
        return _unavailable(request, exc)
    return web.json_response({"changed": lifted is not None, "paused": False,
                              "lifted": _pause_data(lifted) if lifted else None})


@requires("admin")
async def reset_circuit(request: web.Request) -> web.Response:
    """``POST /api/v1/circuits/{target}/reset``: close a target's circuit breaker."""
    target = request.match_info["target"]
    runtime = request.app[RUNTIME]
    if target not in runtime.settings.targets:
        return error_response(404, "not_found", f"no target {target!r} in the service config")
    try:
        before = await runtime.breakers.reset(target, actor=request[PRINCIPAL].name)
    except (StateError, AuditError) as exc:
        return _unavailable(request, exc)
    return web.json_response({"target": target, "failures_before": before.failures})


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/approvals", list_approvals)
    app.router.add_get("/api/v1/approvals/{id}", get_approval)
    app.router.add_post("/api/v1/approvals/{id}/approve", approve)
    app.router.add_post("/api/v1/approvals/{id}/reject", reject)
    app.router.add_get("/api/v1/pause", pause_state)
    app.router.add_post("/api/v1/pause", pause)
    app.router.add_post("/api/v1/resume", resume)
    app.router.add_post("/api/v1/circuits/{target}/reset", reset_circuit)
