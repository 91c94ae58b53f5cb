"""``http.request``: params, allow-list after templating, and the plan a human approves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from remediations.base import ActionContext, InvalidParams, TargetNotAllowed, TemporaryError
from remediations.http import HttpRequest
from remediations.targets import HttpTarget
from rules.alert import Alert

TARGET = HttpTarget(kind="http", base_url="http://svc.internal:8080/api")
ALERT = Alert(fingerprint="abc", status="firing", labels={"alertname": "X"}, annotations={},
              starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z")


def ctx() -> ActionContext:
    return ActionContext(decision_id="d", rule="r", alert=ALERT, target_name="api", target=TARGET,
                         dry_run=True)


@pytest.mark.parametrize("path", [
    pytest.param("/cache", id="under-base"),
    pytest.param("/cache/x?y=1&z=2", id="query"),
    pytest.param("/", id="base-itself"),
    pytest.param("/a%2Fb", id="encoded-slash"),
])
async def test_paths_under_the_base_are_allowed(path: str) -> None:
    """Paths resolve under the target's base URL and pass the allow-list."""
    action = HttpRequest()
    params = action.parse_params({"path": path})
    action.check_allowed(ctx(), params)
    plan = await action.plan(ctx(), params)
    assert plan.steps[0].startswith("POST http://svc.internal:8080/api/")


@pytest.mark.parametrize("path", [
    pytest.param("http://evil/", id="absolute-url"),
    pytest.param("//evil/x", id="scheme-relative"),
    pytest.param("/../admin", id="dotdot"),
    pytest.param("/a/../../x", id="dotdot-deeper"),
    pytest.param("/a\\b", id="backslash"),
    pytest.param("/a b", id="space"),
    pytest.param("/a\nb", id="newline"),
    pytest.param("relative", id="no-leading-slash"),
])
def test_paths_that_could_leave_the_base_are_refused(path: str) -> None:
    """A rendered path that could leave the base URL is refused as invalid params."""
    with pytest.raises(InvalidParams):
        HttpRequest().parse_params({"path": path})


def test_allow_list_resolves_dot_segments_as_a_server_would() -> None:
    """A path that climbs out of the base prefix, plainly or percent-encoded, is refused."""
    action = HttpRequest()
    params = action.parse_params({"path": "/x"})
    other = ActionContext(decision_id="d", rule="r", alert=ALERT, target_name="api", dry_run=True,
                          target=HttpTarget(kind="http", base_url="http://svc.internal:8080/api"))
    action.check_allowed(other, params)
    for sneaky in ("/../../other", "/%2e%2e/%2E%2E/other", "/x/..%2f..%2fother"):
        with pytest.raises(TargetNotAllowed):
            action.check_allowed(other, params.model_copy(update={"path": sneaky}))


@pytest.mark.parametrize(("raw", "destructive"), [
    ({"method": "GET"}, False), ({"method": "HEAD"}, False),
    ({"method": "POST"}, True), ({"method": "DELETE"}, True), ({}, True),
])
def test_destructive_follows_the_method(raw: dict[str, Any], destructive: bool) -> None:
    """Only GET and HEAD are read-only; anything else needs approval by default."""
    action = HttpRequest()
    assert action.is_destructive(action.parse_params(raw)) is destructive


async def test_plan_lists_the_exact_call_without_secret_values() -> None:
    """The plan shows method, URL, header names, body and expected status, never header values."""
    target = HttpTarget.model_validate({"kind": "http", "base_url": "http://svc:1",
                                        "headers": {}})
    c = ActionContext(decision_id="d", rule="r", alert=ALERT, target_name="api", target=target, dry_run=True)
    action = HttpRequest()
    params = action.parse_params({"method": "PUT", "path": "/p", "headers": {"X-A": "1"},
                                  "json": {"k": "v"}, "expect_status": [204]})
    plan = await action.plan(c, params)
    assert plan.steps == ("PUT http://svc:1/p", "with headers X-A", 'with JSON body {"k": "v"}',
                          "expect status 204")
    assert plan.destructive


@pytest.mark.parametrize("raw", [
    pytest.param({"method": "TRACE"}, id="method"),
    pytest.param({"headers": {"Bad Header": "x"}}, id="header-name"),
    pytest.param({"headers": {"X": "a\r\nInjected: 1"}}, id="header-injection"),
    pytest.param({"headers": {"Host": "internal-admin.svc"}}, id="host-header-leaves-base-url"),
    pytest.param({"headers": {"content-length": "0"}}, id="content-length"),
    pytest.param({"headers": {"Transfer-Encoding": "chunked"}}, id="transfer-encoding"),
    pytest.param({"expect_status": [999]}, id="status-range"),
    pytest.param({"unknown": 1}, id="unknown-param"),
])
def test_invalid_params_are_refused(raw: dict[str, Any]) -> None:
    """Bad params are InvalidParams naming the field."""
    with pytest.raises(InvalidParams, match=r"http\.request: "):
        HttpRequest().parse_params(raw)


@pytest.mark.parametrize(("a", "b", "same"), [
    pytest.param({"path": "/c/x", "headers": {"X-R": "1"}}, {"path": "/c/x", "headers": {"X-R": "2"}}, True,
                 id="headers-do-not-change-the-resource"),
    pytest.param({"path": "/c/x?a=1"}, {"path": "/c/x?a=2"}, False, id="the-query-names-the-resource-too"),
    pytest.param({"path": "/c/x"}, {"path": "/c/y"}, False, id="another-path"),
    pytest.param({"path": "/c/x", "method": "POST"}, {"path": "/c/x", "method": "DELETE"}, False,
                 id="another-method"),
])
def test_subject_is_target_method_and_path(a: dict[str, Any], b: dict[str, Any], same: bool) -> None:
    """Cooldowns and locks key on the resource, so per-alert headers do not make a new one."""
    action = HttpRequest()
    first = action.subject(ctx(), action.parse_params(a))
    assert (first == action.subject(ctx(), action.parse_params(b))) is same


async def test_a_server_echoing_the_request_does_not_leak_a_secret_header(
        aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The response excerpt (it goes to the audit log) shows secret header values as references."""
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"you sent {request.headers['Authorization']}", status=500)

    app = web.Application()
    app.router.add_post("/x", echo)
    server = await aiohttp_server(app)
    monkeypatch.setenv("TEST_API_AUTH", "Bearer s3cr3t-value")
    target = HttpTarget.model_validate({"kind": "http", "base_url": str(server.make_url("/")),
                                        "headers": {"Authorization": "env:TEST_API_AUTH"}})
    context = ActionContext(decision_id="d", rule="r", alert=ALERT, target_name="api", target=target,
                            dry_run=False)
    action = HttpRequest()
    params = action.parse_params({"path": "/x"})
    with pytest.raises(TemporaryError) as caught:
        await action.execute(context, params, await action.plan(context, params))
    assert "s3cr3t" not in str(caught.value)
    assert "<secret env:TEST_API_AUTH>" in str(caught.value)
