"""The console's admin page: the kill switch, the circuit breakers, the loaded rules.

Registered by ``receiver.http.console.add_console_routes``; every route needs the
``admin`` role, and every change goes through the same objects as ``/api/v1`` (the kill
switch, the breakers), with ``console:NAME`` as the actor. A rule's last decision comes
from the newest ``TAIL_BYTES`` of this replica's audit log, read backwards from its end
(``receiver.tools.auditview.last_decisions``), so the page costs the same on any log.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from receiver.errors import StateError
from receiver.http.console.pages import SESSIONS, page, refused, signed_in
from receiver.http.console.session import Refused
from receiver.http.keys import RUNTIME
from receiver.tools.auditview import audit_files, last_decisions
from rules.model import ApprovalByPriority

TAIL_BYTES = 4 * 1024 * 1024


async def admin(request: web.Request) -> web.StreamResponse:
    """``GET /ui/admin``."""
    runtime = request.app[RUNTIME]
    try:
        session = signed_in(request, "admin")
        circuits = []
        now = runtime.clock.now()
        for target in sorted(runtime.settings.targets):
            c = await runtime.state.circuit(target)
            circuits.append({"target": target, "failures": c.failures,
                             "state": "open" if c.is_open(now) else "closed"})
    except Refused as exc:
        return await refused(request, exc)
    except StateError as exc:
        return await refused(request, Refused(503, f"the state store is unavailable: {exc}"))
    last = await asyncio.to_thread(last_decisions, audit_files(runtime.settings.audit), TAIL_BYTES)
    rules = [{"name": r.name, "priority": r.priority or "by severity",
              "approval": _approval(r.approval),
              "last": last.get(r.name, "none in the newest records")}
             for r in runtime.rules.index.ruleset.rules]
    return await page(request, "admin.html", session, nav="admin", circuits=circuits, rules=rules,
                      tail_mb=TAIL_BYTES // (1024 * 1024), message=request.query.get("done"),
                      message_kind="ok")


def _approval(approval: object) -> str:
    if approval is None:
        return "for destructive steps"
    if isinstance(approval, ApprovalByPriority):
        return "at " + ", ".join(approval.required_for)
    return str(approval)


def _done(text: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/ui/admin?{urlencode({'done': text})}")


async def pause(request: web.Request) -> web.StreamResponse:
    """``POST /ui/admin/pause`` with a reason."""
    try:
        session, form = await request.app[SESSIONS].guard_post(request, need="admin")
        reason = str(form.get("reason") or "").strip()[:1000] or "paused from the console"
        await request.app[RUNTIME].killswitch.pause(actor=f"console:{session.name}", detail=reason)
    except Refused as exc:
        return await refused(request, exc)
    except StateError as exc:
        return await refused(request, Refused(503, f"the state store is unavailable: {exc}; nothing changed"))
    raise _done("Paused: no live action runs until you resume.")


async def resume(request: web.Request) -> web.StreamResponse:
    """``POST /ui/admin/resume``."""
    try:
        session, _ = await request.app[SESSIONS].guard_post(request, need="admin")
        await request.app[RUNTIME].killswitch.resume(actor=f"console:{session.name}")
    except Refused as exc:
        return await refused(request, exc)
    except StateError as exc:
        return await refused(request, Refused(503, f"the state store is unavailable: {exc}; nothing changed"))
    raise _done("Resumed.")


async def reset_circuit(request: web.Request) -> web.StreamResponse:
    """``POST /ui/admin/circuits/{target}/reset``."""
    target = request.match_info["target"]
    runtime = request.app[RUNTIME]
    try:
        session, _ = await request.app[SESSIONS].guard_post(request, need="admin")
        if target not in runtime.settings.targets:
            raise Refused(404, f"no target {target!r} in the service config")
        await runtime.breakers.reset(target, actor=f"console:{session.name}")
    except Refused as exc:
        return await refused(request, exc)
    except StateError as exc:
        return await refused(request, Refused(503, f"the state store is unavailable: {exc}; nothing changed"))
    raise _done(f"The circuit of {target} is closed.")


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/ui/admin", admin)
    app.router.add_post("/ui/admin/pause", pause)
    app.router.add_post("/ui/admin/resume", resume)
    app.router.add_post("/ui/admin/circuits/{target}/reset", reset_circuit)
