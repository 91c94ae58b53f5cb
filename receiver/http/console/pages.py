"""The console's pages for approvers: pending approvals, one approval (decide it), an
incident's timeline, and audit search.

Registered by ``receiver.http.console.add_console_routes``. Deciding goes through
``receiver.flow.guards.approvals`` exactly as ``POST /api/v1/approvals/{id}/approve`` does
(once, atomically, across replicas) with ``console:NAME`` as the actor. The incident page
and the search read the audit log streaming (``receiver.tools.auditview``): memory holds a
page, or one incident's records, never a file.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from receiver.errors import Conflict, NotFound, StateError
from receiver.flow.codec import ApprovalRequest
from receiver.flow.notices import alert_source, diagnosis_lines, iso
from receiver.http.console.session import Refused, Session, Sessions
from receiver.http.keys import RUNTIME
from receiver.store.values import Approval, ApprovalStatus
from receiver.tools.auditview import (
    AuditReadError,
    Cursor,
    Filter,
    audit_files,
    incident_entries,
    known_event,
    parse_when,
    search,
    summary,
)
from receiver.tools.timeline import build_timelines, duration_text, verdict
from remediations.notify.notice import web_link

SESSIONS = web.AppKey("console_sessions", Sessions)
PAGE_SIZE = 100
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")


async def page(request: web.Request, template: str, session: Session | None, *, status: int = 200,
               **context: Any) -> web.Response:
    """Render ``template`` with the session and the pause banner."""
    paused = None
    if session is not None:
        try:
            paused = await request.app[RUNTIME].killswitch.state()
        except StateError:
            paused = None
    response = aiohttp_jinja2.render_template(template, request, {"session": session, "paused": paused,
                                                                  **context}, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'self'; "
                                                   "form-action 'self'; frame-ancestors 'none'")
    return response


async def refused(request: web.Request, exc: Refused, session: Session | None = None) -> web.Response:
    if exc.status == 401 and request.method == "GET":
        raise web.HTTPSeeOther("/ui/login")
    heading = {401: "Signed out", 403: "Refused", 404: "Not found", 409: "Already decided",
               503: "Unavailable"}.get(exc.status, "Error")
    return await page(request, "error.html", session, status=exc.status, heading=heading, detail=exc.detail)


def signed_in(request: web.Request, need: str = "approver") -> Session:
    session = request.app[SESSIONS].read(request)
    if session is None:
        raise Refused(401, "sign in first")
    if not session.may(need):
        raise Refused(403, f"{session.name} (role {session.role}) may not see this page")
    return session


def _view(a: Approval) -> dict[str, Any]:
    request = ApprovalRequest.of_approval(a)
    return {"id": a.id, "rule": a.rule, "status": a.status.value, "priority": request.priority,
            "alertname": request.alert.name or a.fingerprint, "fingerprint": a.fingerprint,
            "decision": a.decision, "plan": request.plan_lines(), "diagnosis": diagnosis_lines(request),
            "labels": sorted(request.alert.labels.items()),
            "annotations": sorted(request.alert.annotations.items()),
            "source": alert_source(request.alert),
            "created": iso(a.created_at), "expires": iso(a.expires_at),
            "decided": iso(a.decided_at) if a.decided_at else "", "decided_by": a.decided_by,
            "comment": a.comment}


async def approvals(request: web.Request) -> web.StreamResponse:
    """``GET /ui/approvals``: what waits for a human, and what was decided lately."""
    try:
        session = signed_in(request)
        every = await request.app[RUNTIME].approvals.list()
    except Refused as exc:
        return await refused(request, exc)
    except StateError as exc:
        return await refused(request, Refused(503, f"the state store is unavailable: {exc}"))
    pending = [_view(a) for a in every if a.status is ApprovalStatus.PENDING]
    decided = [_view(a) for a in every if a.status is not ApprovalStatus.PENDING][:20]
    return await page(request, "approvals.html", session, nav="approvals", pending=pending, decided=decided,
                      message=request.query.get("done"), message_kind="ok")


async def approval(request: web.Request) -> web.StreamResponse:
    """``GET /ui/approvals/{id}``: the alert, the plan, the diagnosis; Approve / Reject."""
    try:
        session = signed_in(request)
        found = await request.app[RUNTIME].approvals.get(request.match_info["id"])
    except Refused as exc:
        return await refused(request, exc)
    except NotFound as exc:
        return await refused(request, Refused(404, str(exc)))
    except StateError as exc:
        return await refused(request, Refused(503, f"the state store is unavailable: {exc}"))
    done = request.query.get("done")
    return await page(request, "approval.html", session, nav="approvals", a=_view(found),
                      message=done, message_kind="ok")


async def _decide(request: web.Request, *, approve: bool) -> web.StreamResponse:
    approval_id = request.match_info["id"]
    try:
        session, form = await request.app[SESSIONS].guard_post(request, need="approver")
    except Refused as exc:
        return await refused(request, exc)
    comment = str(form.get("comment") or "").strip()[:1000] or None
    try:
        decided = await request.app[RUNTIME].approvals.decide(
            approval_id, approve=approve, actor=f"console:{session.name}", comment=comment)
    except NotFound as exc:
        return await refused(request, Refused(404, str(exc)), session)
    except Conflict as exc:
        return await refused(request, Refused(409, str(exc)), session)
    except StateError as exc:
        return await refused(request, Refused(503, f"the state store is unavailable: {exc}; "
                                              "nothing was changed"), session)
    said = "Approved: the plan is queued to run." if approve else "Rejected: nothing will run."
    raise web.HTTPSeeOther(f"/ui/approvals/{decided.id}?{urlencode({'done': said})}")


async def approve(request: web.Request) -> web.StreamResponse:
    """``POST /ui/approvals/{id}/approve``."""
    return await _decide(request, approve=True)


async def reject(request: web.Request) -> web.StreamResponse:
    """``POST /ui/approvals/{id}/reject``."""
    return await _decide(request, approve=False)


def _row_kind(text: str) -> str:
    lowered = text.lower()
    for word, kind in (("fired", "fired"), ("failed", "failed"), ("approved by", "human"),
                       ("rejected by", "human"), ("succeeded", "acted"), ("resolved", "resolved")):
        if word in lowered:
            return kind
    return "step"


async def incident(request: web.Request) -> web.StreamResponse:
    """``GET /ui/incidents/{fingerprint}``: the alert's timeline from the audit log."""
    fingerprint = request.match_info["fingerprint"]
    try:
        session = signed_in(request)
        if not _FINGERPRINT.match(fingerprint):
            raise Refused(404, "an alert's fingerprint is hexadecimal")
        paths = audit_files(request.app[RUNTIME].settings.audit)
        entries = await asyncio.to_thread(incident_entries, paths, [fingerprint])
    except Refused as exc:
        return await refused(request, exc)
    except AuditReadError as exc:
        return await refused(request, Refused(503, str(exc)))
    timelines = build_timelines(entries, [fingerprint])
    if not timelines:
        gone = Refused(404, f"no record of alert {fingerprint} in this replica's audit log")
        return await refused(request, gone, session)
    t = timelines[0]
    now = datetime.fromtimestamp(request.app[RUNTIME].clock.now(), UTC)
    said = verdict(t, now).replace("**", "")
    kind = "met" if ": met" in said else "missed" if ": missed" in said else "open"
    urls = {str(e.record.get("generatorURL") or "") for e in entries}
    sources = sorted({link for u in urls if (link := web_link(u)) is not None})
    rows = [{"iso": at.isoformat(), "time": at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
             "text": text.replace("`", ""), "kind": _row_kind(text)}
            for at, text in sorted(t.rows, key=lambda r: r[0])]
    return await page(request, "incident.html", session, nav="audit", t=t, verdict=said, verdict_kind=kind,
                      duration=duration_text(t, now), sources=sources, rows=rows)


async def audit(request: web.Request) -> web.StreamResponse:
    """``GET /ui/audit``: the search (time range, rule, alert, event, outcome), paged."""
    q = {k: request.query.get(k, "").strip() for k in ("since", "until", "rule", "alert", "event", "outcome")}
    try:
        session = signed_in(request)
        now = datetime.fromtimestamp(request.app[RUNTIME].clock.now(), UTC)
        if q["event"] and not known_event(q["event"]):
            raise AuditReadError(f"no such audit event: {q['event']!r} (e.g. rule.matched, approval.*)")
        keep = Filter(since=parse_when(q["since"], now) if q["since"] else None,
                      until=parse_when(q["until"], now) if q["until"] else None,
                      rules=[q["rule"]] if q["rule"] else [], alerts=[q["alert"]] if q["alert"] else [],
                      events=[q["event"]] if q["event"] else [],
                      outcomes=[q["outcome"]] if q["outcome"] else [])
        start = Cursor.parse(request.query["at"]) if request.query.get("at") else Cursor()
        found = await asyncio.to_thread(search, audit_files(request.app[RUNTIME].settings.audit), keep,
                                        start=start, limit=PAGE_SIZE)
    except Refused as exc:
        return await refused(request, exc)
    except AuditReadError as exc:
        return await page(request, "audit.html", signed_in(request), status=400, nav="audit", q=q, entries=[],
                          scanned=0, next_url=None, message=str(exc), message_kind="error")
    entries = [{"ts": e.record["ts"], "event": e.record["event"], "rule": e.record.get("rule") or "",
                "fingerprint": str(e.record.get("fingerprint") or ""),
                "outcome": str(e.record.get("outcome") or e.record.get("reason") or ""),
                "detail": summary(e.record)[:300]} for e in found.entries]
    next_url = f"/ui/audit?{urlencode({**q, 'at': str(found.next)})}" if found.next else None
    return await page(request, "audit.html", session, nav="audit", q=q, entries=entries,
                      scanned=found.scanned, next_url=next_url)


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/ui/approvals", approvals)
    app.router.add_get("/ui/approvals/{id}", approval)
    app.router.add_post("/ui/approvals/{id}/approve", approve)
    app.router.add_post("/ui/approvals/{id}/reject", reject)
    app.router.add_get("/ui/incidents/{fingerprint}", incident)
    app.router.add_get("/ui/audit", audit)
