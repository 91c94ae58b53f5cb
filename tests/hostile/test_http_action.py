"""Labels into ``http.request``'s URL and headers, through the real app to a real server.

Each case posts one alert whose ``service`` label is hostile to a live ``serve`` app whose
rule renders it into the path, the query or a header of a POST. Either the decision fails
at render, audited as ``invalid_params`` with the reason, and the server sees nothing; or
the server receives exactly the URL the plan showed (its raw path and query, byte for
byte) and the label stays inside the one segment or value it was written for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from remediations.registry import default_registry
from rules.errors import RuleLoadError
from rules.loader import load_rules
from tests.conftest import ClientFactory, read_audit, rules_yaml, runtime_of
from tests.support.webhooks import alert, body

ServerFactory = Callable[..., Awaitable[TestServer]]
PATH = "/v1/cache/{{ labels.service }}"
QUERY = "/v1/cache?key={{ labels.service }}&scope=all"


@dataclass
class Seen:
    """What the target received: raw path with query, and the parsed query."""

    calls: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = field(default_factory=list)


async def start_target(aiohttp_server: ServerFactory) -> tuple[Seen, str]:
    seen = Seen()

    async def handle(request: web.Request) -> web.Response:
        seen.calls.append((request.raw_path, list(request.query.items()), dict(request.headers)))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await aiohttp_server(app)
    return seen, str(server.make_url("/api")).rstrip("/")


async def run(make_client: ClientFactory, make_settings: Any, base: str, params: dict[str, Any],
              service: str) -> list[dict[str, Any]]:
    rule = {"name": "invalidate", "match": ['alertname = "HighErrorRate"', 'service != ""'],
            "approval": "auto",
            "actions": [{"action": "http.request", "target": "api", "params": {"method": "POST", **params}}]}
    settings = make_settings(rules=rules_yaml([rule]), dry_run=False,
                             targets={"api": {"kind": "http", "base_url": base, "timeout": 2}})
    client = await make_client(settings)
    resp = await client.post("/webhook", data=body(alert(service=service)),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 202
    runtime = runtime_of(client)
    await asyncio.wait_for(runtime.queue.wait_idle(), 10)
    await runtime.audit.sync()
    return read_audit(settings.audit)


def encoded(text: str, times: int) -> str:
    for _ in range(times):
        text = "".join(f"%{ord(c):02X}" for c in text)
    return text


# (the path param, the service label, the raw path and query the server must see,
#  or None and the words the refusal must say)
CASES = [
    pytest.param(PATH, "web", "/api/v1/cache/web", None, id="plain"),
    pytest.param(PATH, "%2e%2e/%2e%2e/admin", None, "'/'", id="encoded-dots-climb"),
    pytest.param(PATH, "%2e%2e", None, "dot segment", id="encoded-dotdot"),
    pytest.param(PATH, "%2E%2e", None, "dot segment", id="encoded-dotdot-mixed-case"),
    pytest.param(PATH, "..", None, "dot segment", id="dotdot"),
    pytest.param(PATH, ".", None, "dot segment", id="dot"),
    pytest.param(PATH, ".%2e", None, "dot segment", id="half-encoded-dotdot"),
    pytest.param(PATH, "%252e%252e", None, "dot segment", id="double-encoded-dotdot"),
    pytest.param(PATH, "..;", None, "dot segment", id="tomcat-dotdot-semicolon"),
    pytest.param(PATH, "../admin", None, "'/'", id="plain-climb"),
    pytest.param(PATH, "x%2Fadmin", None, "'/'", id="encoded-slash"),
    pytest.param(PATH, "x%5C..%5Cadmin", None, "'\\\\'", id="encoded-backslash"),
    pytest.param(PATH, "x?admin=1", None, "'?'", id="adds-a-query"),
    pytest.param(PATH, "x%3Fadmin=1", None, "'?'", id="adds-an-encoded-query"),
    pytest.param(PATH, "x#admin", None, "'#'", id="adds-a-fragment"),
    pytest.param(PATH, "x%00", None, "control character", id="encoded-nul"),
    pytest.param(PATH, "x\x0b", None, "control character", id="vertical-tab"),
    pytest.param(PATH, "x%0d%0aHost:evil", None, "control character", id="encoded-crlf"),
    pytest.param(PATH, encoded("..", 5), None, "not decodable", id="encoded-beyond-reason"),
    pytest.param(PATH, "café", "/api/v1/cache/caf%C3%A9", None, id="non-ascii-encoded"),
    pytest.param(PATH, "\u202egnp.exe", "/api/v1/cache/%E2%80%AEgnp.exe", None, id="rtl-override-inert"),
    pytest.param(PATH, "a&b=c", "/api/v1/cache/a&b=c", None, id="ampersand-in-a-segment-inert"),
    pytest.param(PATH, "100%", "/api/v1/cache/100%25", None, id="lone-percent-encoded"),
    pytest.param(PATH, "x%2e", "/api/v1/cache/x%2e", None, id="encoded-dot-in-a-name-inert"),
    pytest.param(QUERY, "web", "/api/v1/cache?key=web&scope=all", None, id="query-plain"),
    pytest.param(QUERY, "x&admin=1", None, "'&'", id="query-adds-a-parameter"),
    pytest.param(QUERY, "x;admin=1", None, "';'", id="query-semicolon-parameter"),
    pytest.param(QUERY, "x=1", None, "'='", id="query-equals"),
    pytest.param(QUERY, "x#frag", None, "'#'", id="query-fragment"),
    pytest.param(QUERY, "x%26admin%3D1", None, "'&'", id="query-encoded-ampersand"),
    pytest.param(QUERY, "café au lait", "/api/v1/cache?key=caf%C3%A9%20au%20lait&scope=all", None,
                 id="query-space-and-non-ascii-encoded"),
]


@pytest.mark.parametrize(("path", "service", "received", "refusal"), CASES)
async def test_a_label_in_the_url_is_refused_or_sent_exactly_as_planned(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory, path: str,
        service: str, received: str | None, refusal: str | None) -> None:
    seen, base = await start_target(aiohttp_server)
    records = await run(make_client, make_settings, base, {"path": path}, service)
    events = [r["event"] for r in records]
    if received is None:
        assert seen.calls == []
        failed = next(r for r in records if r["event"] == "decision.failed")
        assert failed["reason"] == "invalid_params"
        assert refusal in failed["detail"]
        assert "{{ labels.service }}" in failed["detail"]
        assert "action.started" not in events
        return
    planned = next(r for r in records if r["event"] == "action.planned")["plan"]
    raw, query, _ = seen.calls[0]
    assert len(seen.calls) == 1
    assert raw == received
    sent = urlsplit(planned["details"]["url"])
    assert sent.path + (f"?{sent.query}" if sent.query else "") == received
    assert planned["steps"][0] == f"POST {planned['details']['url']}"
    if path == QUERY:
        assert [k for k, _ in query] == ["key", "scope"]


HEADERS = [
    pytest.param("x\x00y", id="nul"),
    pytest.param("x\x0by", id="vertical-tab"),
    pytest.param("x\x7fy", id="del"),
    pytest.param("x\ry", id="cr"),
    pytest.param("x\ny: 1", id="lf-injects-a-header"),
    pytest.param("x\x1by", id="escape"),
    pytest.param("caf\u00e9", id="latin-1"),
    pytest.param("\u202eevil", id="rtl-override"),
]


@pytest.mark.parametrize("service", HEADERS)
async def test_a_header_value_from_a_label_is_refused_at_render(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory, service: str) -> None:
    """Refused before anything starts, with the rule and alert named (it once crashed at send
    time: ``action.started`` with no ending, ``decision.failed`` naming nothing)."""
    seen, base = await start_target(aiohttp_server)
    records = await run(make_client, make_settings, base,
                        {"path": "/v1/x", "headers": {"X-Service": "{{ labels.service }}"}}, service)
    assert seen.calls == []
    assert "action.started" not in [r["event"] for r in records]
    failed = next(r for r in records if r["event"] == "decision.failed")
    assert failed["reason"] == "invalid_params"
    assert failed["rule"] == "invalidate"
    assert failed["fingerprint"]
    assert "header X-Service must contain only printable ASCII" in failed["detail"]


@pytest.mark.parametrize("value", [
    pytest.param("a\\x00b", id="nul"), pytest.param("a\\x0bb", id="vertical-tab"),
    pytest.param("a\\x7fb", id="del"), pytest.param("a\\u00e9", id="non-ascii"),
])
def test_a_header_value_in_a_rule_is_refused_at_load(tmp_path: Any, value: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text('rules:\n  - name: r\n    match: [a=b]\n    actions:\n      - action: http.request\n'
                    f'        target: api\n        params: {{headers: {{X-A: "{value}"}}}}\n')
    with pytest.raises(RuleLoadError) as err:
        load_rules([path], catalogue=default_registry())
    assert "header X-A must contain only printable ASCII" in str(err.value)
    assert f"{path}:7" in str(err.value)


@pytest.mark.parametrize("path", [
    pytest.param("/a/%2e%2e/admin", id="encoded-dotdot"),
    pytest.param("/a/..;/admin", id="dotdot-semicolon"),
    pytest.param("/a/x#y", id="fragment"),
    pytest.param("/a/%00", id="encoded-nul"),
])
def test_a_rule_path_that_hides_a_climb_is_refused_at_load(tmp_path: Any, path: str) -> None:
    file = tmp_path / "r.yaml"
    file.write_text('rules:\n  - name: r\n    match: [a=b]\n    actions:\n      - action: http.request\n'
                    f'        target: api\n        params: {{path: "{path}"}}\n')
    with pytest.raises(RuleLoadError) as err:
        load_rules([file], catalogue=default_registry())
    assert "path" in str(err.value)
    assert f"{file}:7" in str(err.value)
