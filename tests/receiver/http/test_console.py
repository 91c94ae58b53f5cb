"""The console over HTTP, as a browser speaks it: sign-in and its cookie, roles, approving and
rejecting through the same transition as the API (once), and every way a state-changing
request can be forged (no session, no or a wrong CSRF token, a foreign or missing origin)
refused with nothing changed. ``test_console_browser.py`` drives the same pages in Chromium.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from receiver.flow.escalation import _incident_link
from receiver.flow.notices import approval_notice
from receiver.store.values import Approval, ApprovalStatus
from remediations.notify.delivery import pagerduty_body, webhook_body
from tests.conftest import ClientFactory, read_audit, runtime_of
from tests.support.approvals import AM, pending, settle, stored_request
from tests.support.console import CONSOLE_TOKENS, console_settings, csrf_of, sign_in
from tests.support.httptarget import ServerFactory, Target, serve_target
from tests.support.webhooks import alert, body

Setup = tuple[TestClient[Any, Any], Target, Any]


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CONSOLE_TOKENS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def setup(make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory) -> Setup:
    target, base = await serve_target(aiohttp_server)
    settings = console_settings(make_settings, base)
    client = await make_client(settings)
    assert (await client.post("/webhook", data=body(alert()), headers=AM)).status == 202
    await settle(client)
    return client, target, settings


def origin(client: TestClient[Any, Any]) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


def decided(settings: Any) -> list[tuple[str, str, Any]]:
    return [(r["event"], r["actor"], r["comment"]) for r in read_audit(settings.audit)
            if r["event"] in ("approval.approved", "approval.rejected")]


async def test_sign_in_sets_a_strict_http_only_cookie(setup: Setup) -> None:
    client, _, _ = setup
    resp = await client.post("/ui/login", data={"token": "oncall-secret"}, headers=origin(client),
                             allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/ui/approvals")
    cookie = resp.headers["Set-Cookie"]
    assert "remediator_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; TLS sets it
    page = await (await client.get("/ui/approvals")).text()
    assert "oncall-alice · approver" in page
    assert "purge-cache" in page


@pytest.mark.parametrize(("form", "status", "said"), [
    pytest.param({"token": "wrong"}, 401, "Those credentials are not valid.", id="wrong-token"),
    pytest.param({"username": "bob", "password": "nope"}, 401, "Those credentials are not valid.",
                 id="wrong-password"),
    pytest.param({}, 401, "Those credentials are not valid.", id="nothing"),
    pytest.param({"token": "am-secret"}, 403, "webhook role, which has no console", id="webhook-role"),
])
async def test_sign_in_refusals(setup: Setup, form: dict[str, str], status: int, said: str) -> None:
    client, _, _ = setup
    resp = await client.post("/ui/login", data=form, headers=origin(client), allow_redirects=False)
    assert resp.status == status
    assert said in await resp.text()
    assert "remediator_session" not in resp.headers.get("Set-Cookie", "")


async def test_basic_auth_users_sign_in_too(setup: Setup) -> None:
    client, _, _ = setup
    await sign_in(client, username="bob", password="bob-pass")
    assert "bob · approver" in await (await client.get("/ui/approvals")).text()


async def test_pages_need_a_session(setup: Setup) -> None:
    client, _, _ = setup
    for path in ("/ui/approvals", "/ui/audit", "/ui/admin", "/ui/incidents/abc"):
        resp = await client.get(path, allow_redirects=False)
        assert (resp.status, resp.headers.get("Location")) == (303, "/ui/login"), path
    client.session.cookie_jar.update_cookies({"remediator_session": "eyJuIjoic3JlLWFkbWluIn0.forged"})
    resp = await client.get("/ui/approvals", allow_redirects=False)
    assert resp.status == 303


async def test_approve_with_a_comment_runs_once_as_the_console_user(setup: Setup) -> None:
    client, target, settings = setup
    csrf = await sign_in(client, token="oncall-secret")
    [approval] = await pending(client)
    path = f"/ui/approvals/{approval['id']}/approve"
    resp = await client.post(path, data={"csrf": csrf, "comment": "safe to purge"}, headers=origin(client))
    await settle(client)
    assert resp.status == 200
    assert "Approved: the plan is queued to run." in await resp.text()
    assert [c[1] for c in target.calls] == ["/svc/purge/prod"]
    assert decided(settings) == [("approval.approved", "console:oncall-alice", "safe to purge")]
    again = await client.post(path, data={"csrf": csrf}, headers=origin(client))
    await settle(client)
    assert again.status == 409
    assert "approved by console:oncall-alice" in await again.text()
    assert len(target.calls) == 1


async def test_reject(setup: Setup) -> None:
    client, target, settings = setup
    csrf = await sign_in(client, token="oncall-secret")
    [approval] = await pending(client)
    resp = await client.post(f"/ui/approvals/{approval['id']}/reject", data={"csrf": csrf, "comment": "no"},
                             headers=origin(client))
    await settle(client)
    assert resp.status == 200
    assert target.calls == []
    assert decided(settings) == [("approval.rejected", "console:oncall-alice", "no")]


@pytest.mark.parametrize(("case", "headers", "with_token"), [
    pytest.param("foreign-origin", {"Origin": "https://evil.example"}, True, id="foreign-origin"),
    pytest.param("foreign-origin-no-token", {"Origin": "https://evil.example"}, False,
                 id="cross-site-form-without-token"),
    pytest.param("no-origin", {}, True, id="no-origin-no-referer"),
    pytest.param("foreign-referer", {"Referer": "https://evil.example/page"}, True, id="foreign-referer"),
    pytest.param("no-token", None, False, id="same-origin-without-token"),
    pytest.param("wrong-token", None, "wrong", id="same-origin-wrong-token"),
])
async def test_forged_posts_change_nothing(setup: Setup, case: str, headers: dict[str, str] | None,
                                           with_token: bool | str) -> None:
    client, target, settings = setup
    csrf = await sign_in(client, token="adm")
    [approval] = await pending(client)
    form = {"comment": "x"}
    if with_token is True:
        form["csrf"] = csrf
    elif with_token:
        form["csrf"] = str(with_token)
    sent = origin(client) if headers is None else headers
    for path in (f"/ui/approvals/{approval['id']}/approve", "/ui/admin/pause", "/ui/logout"):
        resp = await client.post(path, data={**form, "reason": "forged"}, headers=sent, allow_redirects=False)
        assert resp.status == 403, (case, path)
        assert "nothing" in await resp.text()
    await settle(client)
    assert target.calls == []
    assert decided(settings) == []
    assert await runtime_of(client).killswitch.state() is None
    assert [a["id"] for a in await pending(client)] == [approval["id"]]


async def test_a_post_without_a_session_is_refused(setup: Setup) -> None:
    client, target, _ = setup
    [approval] = await pending(client)
    resp = await client.post(f"/ui/approvals/{approval['id']}/approve", data={"csrf": "x"},
                             headers=origin(client))
    assert resp.status == 401
    assert target.calls == []


async def test_roles_as_in_the_api(setup: Setup) -> None:
    """An approver decides but has no admin page; an admin pauses and resumes."""
    client, _, settings = setup
    await sign_in(client, token="oncall-secret")
    assert (await client.get("/ui/admin")).status == 403
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, token="adm")
    page = await (await client.get("/ui/admin")).text()
    assert "purge-cache" in page
    assert "api" in page
    resp = await client.post("/ui/admin/pause", data={"csrf": csrf, "reason": "change freeze"},
                             headers=origin(client))
    assert resp.status == 200
    assert "Paused" in await resp.text()
    pause = await runtime_of(client).killswitch.state()
    assert pause is not None
    assert (pause.actor, pause.detail) == ("console:sre-admin", "change freeze")
    resp = await client.post("/ui/admin/resume", data={"csrf": await csrf_of(client, "/ui/admin")},
                             headers=origin(client))
    assert resp.status == 200
    assert await runtime_of(client).killswitch.state() is None
    events = [(r["event"], r.get("actor")) for r in read_audit(settings.audit)
              if r["event"] in ("admin.pause", "admin.resume")]
    assert events == [("admin.pause", "console:sre-admin"), ("admin.resume", "console:sre-admin")]


async def test_incident_page_tells_the_alert_s_story(setup: Setup) -> None:
    client, _, _ = setup
    csrf = await sign_in(client, token="oncall-secret")
    [approval] = await pending(client)
    await client.post(f"/ui/approvals/{approval['id']}/approve", data={"csrf": csrf}, headers=origin(client))
    await settle(client)
    await runtime_of(client).audit.sync()
    page = await (await client.get(f"/ui/incidents/{approval['fingerprint']}")).text()
    assert '<ol class="timeline" id="timeline">' in page
    assert "Alert HighErrorRate fired" in page
    assert "approved by console:oncall-alice" in page
    assert "Action http.request on target api succeeded" in page
    assert "met" in page
    assert 'href="http://prometheus' in page or "generatorURL" not in page
    assert (await client.get("/ui/incidents/not-hex")).status == 404
    assert (await client.get("/ui/incidents/abcdef0123")).status == 404


async def test_audit_search_pages_through_the_records(setup: Setup) -> None:
    client, _, settings = setup
    await sign_in(client, token="oncall-secret")
    await runtime_of(client).audit.sync()
    every = read_audit(settings.audit)
    page = await (await client.get("/ui/audit", params={"event": "alert.received"})).text()
    received = sum(r["event"] == "alert.received" for r in every)
    assert page.count('<td data-label="Event">alert.received</td>') == received
    bad = await client.get("/ui/audit", params={"since": "yesterday-ish"})
    assert bad.status == 400
    assert "neither a duration" in await bad.text()
    assert (await client.get("/ui/audit", params={"event": "nope.never"})).status == 400
    assert (await client.get("/ui/audit", params={"at": "1.2"})).status == 400


def test_notices_link_to_their_console_page_when_its_address_is_known() -> None:
    """Slack (a button and a link), PagerDuty and webhooks (links) of an approval; escalations
    link the incident; nothing without ``console.external_url``."""
    approval = Approval(id="a1", status=ApprovalStatus.PENDING, created_at=0.0, expires_at=60.0,
                        decision="d1", rule="r", fingerprint="f00d", payload=stored_request())
    page = "https://remediator.example.com/ui/approvals/a1"
    notice = approval_notice(approval, buttons=True, console="https://remediator.example.com/")
    assert notice.links == {"Open in the console": page}
    assert pagerduty_body(notice, "key")["links"] == [{"href": page, "text": "Open in the console"}]
    assert webhook_body(notice)["links"] == {"Open in the console": page}
    assert approval_notice(approval, buttons=True, console=None).links == {}
    incident = "https://r.example/ui/incidents/f00d"
    assert _incident_link("https://r.example", "f00d") == {"Incident in the console": incident}
    assert _incident_link(None, "f00d") == {}
    assert _incident_link("https://r.example", None) == {}
