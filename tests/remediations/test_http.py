"""``http.request`` and ``http.check``: params, allow-list after templating, plans, real endpoints."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from remediations.base import ActionContext, InvalidParams, TargetNotAllowed, TemporaryError
from remediations.http import HttpCheck, HttpRequest
from remediations.targets import HttpTarget
from rules.alert import Alert
from tests.support.sdkpool import SDK_CALLS

TARGET = HttpTarget(kind="http", base_url="http://svc.internal:8080/api")
ALERT = Alert(fingerprint="abc", status="firing", labels={"alertname": "X"}, annotations={},
              starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z")


def ctx() -> ActionContext:
    return ActionContext(calls=SDK_CALLS,
                         decision_id="d", rule="r", alert=ALERT, target_name="api", target=TARGET,
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
    other = ActionContext(calls=SDK_CALLS,
                          decision_id="d", rule="r", alert=ALERT, target_name="api", dry_run=True,
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
    c = ActionContext(calls=SDK_CALLS,
                      decision_id="d", rule="r", alert=ALERT, target_name="api", target=target, dry_run=True)
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
    context = ActionContext(calls=SDK_CALLS,
                            decision_id="d", rule="r", alert=ALERT, target_name="api", target=target,
                            dry_run=False)
    action = HttpRequest()
    params = action.parse_params({"path": "/x"})
    with pytest.raises(TemporaryError) as caught:
        await action.execute(context, params, await action.plan(context, params))
    assert "s3cr3t" not in str(caught.value)
    assert "<secret env:TEST_API_AUTH>" in str(caught.value)


# --- http.check: a read-only health check -------------------------------------------------------


class Ticks:
    """An injected monotonic clock: each reading is 0.25 s after the last."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


async def health_server(aiohttp_server: Any, status: int, body: str) -> tuple[str, list[tuple[str, str]]]:
    """A real endpoint answering ``status`` with ``body`` at /svc/health; returns base URL and calls."""
    calls: list[tuple[str, str]] = []

    async def health(request: web.Request) -> web.Response:
        calls.append((request.method, request.headers.get("Authorization", "")))
        return web.Response(text=body, status=status, content_type="application/json")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://elsewhere.invalid/")

    app = web.Application()
    app.router.add_route("*", "/svc/health", health)
    app.router.add_get("/svc/moved", moved)
    server = await aiohttp_server(app)
    return str(server.make_url("/svc")), calls


def check_ctx(target: HttpTarget) -> ActionContext:
    return ActionContext(calls=SDK_CALLS,
                         decision_id="d", rule="r", alert=ALERT, target_name="api", target=target,
                         dry_run=False)


@pytest.mark.parametrize(("status", "expect", "healthy"), [
    pytest.param(200, [], True, id="2xx-by-default"),
    pytest.param(503, [], False, id="503-unhealthy"),
    pytest.param(503, [503], True, id="expected-503"),
    pytest.param(200, [204], False, id="not-the-expected-status"),
])
async def test_check_records_status_latency_and_excerpt(
        aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch, status: int, expect: list[int],
        healthy: bool) -> None:
    """One GET with the target's headers; status, health, latency (injected clock) and the excerpt."""
    base, calls = await health_server(aiohttp_server, status, '{"status": "healthy", "db": "ok"}')
    monkeypatch.setenv("TEST_HEALTH_AUTH", "Bearer t0ken")
    target = HttpTarget.model_validate({"kind": "http", "base_url": base,
                                        "headers": {"Authorization": "env:TEST_HEALTH_AUTH"}})
    action = HttpCheck(monotonic=Ticks())
    params = action.parse_params({"path": "/health", "expect_status": expect, "body_bytes": 18})
    action.check_allowed(check_ctx(target), params)
    plan = await action.plan(check_ctx(target), params)
    assert calls == []  # planning sends nothing
    assert plan.steps[0] == f"GET {base}/health (no redirects followed, at most 5.0s)"
    assert plan.steps[1] == "with headers Authorization"
    assert not plan.destructive
    result = await action.execute(check_ctx(target), params, plan)
    assert calls == [("GET", "Bearer t0ken")]
    assert result.details == {
        "url": f"{base}/health", "method": "GET", "status": status, "healthy": healthy,
        "latency_ms": 250.0, "content_type": "application/json; charset=utf-8",
        "excerpt": '{"status": "health', "error": None,
    }
    assert result.summary == (f"GET {base}/health answered {status} in 250.0 ms: "
                              + ("healthy" if healthy else "unhealthy"))


async def test_check_of_an_unreachable_endpoint_is_a_finding_not_a_failure() -> None:
    """Connection refused is recorded (healthy false, the error), so the diagnosis still completes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = HttpTarget(kind="http", base_url=f"http://127.0.0.1:{port}")
    action = HttpCheck(monotonic=Ticks())
    params = action.parse_params({})
    result = await action.execute(check_ctx(target), params, await action.plan(check_ctx(target), params))
    assert result.details["status"] is None
    assert result.details["healthy"] is False
    assert result.details["error"].startswith("ClientConnectorError")
    assert result.summary.startswith(f"GET http://127.0.0.1:{port}/health: unreachable (")


async def test_check_follows_no_redirect_and_keeps_no_body_when_asked(aiohttp_server: Any) -> None:
    """A redirect is reported as its own status (never followed off the base URL); body_bytes 0 keeps none."""
    base, _ = await health_server(aiohttp_server, 200, "ok")
    target = HttpTarget(kind="http", base_url=base)
    action = HttpCheck(monotonic=Ticks())
    params = action.parse_params({"path": "/moved", "body_bytes": 0})
    result = await action.execute(check_ctx(target), params, await action.plan(check_ctx(target), params))
    found = result.details
    assert (found["status"], found["healthy"], found["excerpt"]) == (302, False, "")


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param({"method": "POST"}, "method", id="post-is-no-check"),
    pytest.param({"path": "/../admin"}, "path", id="dotdot"),
    pytest.param({"path": "http://evil/"}, "path", id="absolute"),
    pytest.param({"body_bytes": 65537}, "body_bytes", id="body-too-big"),
    pytest.param({"body_bytes": -1}, "body_bytes", id="body-negative"),
    pytest.param({"timeout": 0}, "timeout", id="timeout-zero"),
    pytest.param({"timeout": 61}, "timeout", id="timeout-too-long"),
    pytest.param({"expect_status": [600]}, "expect_status", id="status-range"),
    pytest.param({"json": {}}, "json", id="no-body"),
])
def test_check_params_are_strict(raw: dict[str, Any], field: str) -> None:
    """Only GET/HEAD, a path under the base, bounded body and time: anything else names its field."""
    with pytest.raises(InvalidParams, match=rf"http\.check: {field}"):
        HttpCheck().parse_params(raw)


def test_check_allow_list_holds_after_templating() -> None:
    """A rendered path that climbs out of the base (encoded or not) is refused before anything is sent."""
    action = HttpCheck()
    params = action.parse_params({"path": "/health"})
    action.check_allowed(ctx(), params)
    for sneaky in ("/../../other", "/%2e%2e/%2E%2E/other"):
        with pytest.raises(TargetNotAllowed):
            action.check_allowed(ctx(), params.model_copy(update={"path": sneaky}))


async def test_check_timeout_is_bounded_by_the_targets(aiohttp_server: Any) -> None:
    """The request never waits longer than the target's timeout, whatever the params say."""
    base, _ = await health_server(aiohttp_server, 200, "ok")
    target = HttpTarget(kind="http", base_url=base, timeout=2)
    action = HttpCheck()
    plan = await action.plan(check_ctx(target), action.parse_params({"timeout": 30}))
    assert plan.steps[0].endswith("at most 2.0s)")
