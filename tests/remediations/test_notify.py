"""notify.slack / notify.pagerduty / notify.webhook and ``deliver``, against a real local HTTP server.

The server stands in for Slack, PagerDuty and a webhook receiver: it records every request
and answers as each test scripts it. Notifier URLs and keys reach the code as ``env:``
secrets, as they do in production, and no test may find them in a message, plan or result.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import TypeAdapter

from remediations.base import (
    ActionContext,
    InvalidParams,
    PermanentError,
    RemediationError,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.notifiers import Notifier, NotifierConfig
from remediations.notify.actions import (
    NotifyLog,
    NotifyPagerDuty,
    NotifySlack,
    NotifyWebhook,
)
from remediations.notify.delivery import Notice, deliver, pagerduty_body, slack_body
from remediations.targets import HttpTarget
from rules.alert import Alert
from rules.model import ActionSpec
from tests.support.sdkpool import SDK_CALLS

ServerFactory = Callable[..., Awaitable[TestServer]]

SLACK_TOKEN = "T000/B000/slack-s3cret-token"
PD_KEY = "pd-routing-s3cret-key"
HOOK_TOKEN = "hook-s3cret-path"
BEARER = "Bearer hook-s3cret-bearer"
SECRETS = (SLACK_TOKEN, PD_KEY, HOOK_TOKEN, BEARER, "s3cret")

ALERT = Alert(
    fingerprint="fp123", status="firing",
    labels={"alertname": "HighCPU", "instance": "web-1", "team": "oncall"}, annotations={},
    starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z",
    generator_url="http://prom:9090/graph?g0.expr=up",
)
FIELDS = {"rule": "cpu", "alert": "HighCPU", "fingerprint": "fp123"}
LINKS = {"source": "http://prom:9090/graph?g0.expr=up"}


@dataclass
class Endpoint:
    """A real HTTP server that records requests and answers with a scripted reply."""

    status: int = 200
    text: str = "ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    seen: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.seen.append((request.path, dict(request.headers), body))
        if self.hang:
            await asyncio.Event().wait()
        return web.Response(status=self.status, text=self.text, headers=self.headers)


@pytest.fixture
async def endpoint(aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    """The stand-in server, with the notifier secrets pointing at it."""
    ep = Endpoint()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ep.handle)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    monkeypatch.setenv("T_SLACK_URL", f"{base}/services/{SLACK_TOKEN}")
    monkeypatch.setenv("T_PD_KEY", PD_KEY)
    monkeypatch.setenv("T_HOOK_URL", f"{base}/hook/{HOOK_TOKEN}")
    monkeypatch.setenv("T_HOOK_AUTH", BEARER)
    monkeypatch.setenv("T_BASE", base)
    return ep


def notifiers(*, timeout: float = 5.0, **urls: str) -> dict[str, NotifierConfig]:
    """The three notifiers as the service config declares them (secrets resolved from env)."""
    base = os.environ["T_BASE"]
    raw = {
        "oncall": {"kind": "slack", "url": urls.get("slack", "env:T_SLACK_URL"), "timeout": timeout},
        "pager": {"kind": "pagerduty", "routing_key": "env:T_PD_KEY", "url": f"{base}/v2/enqueue",
                  "timeout": timeout},
        "hook": {"kind": "webhook", "url": urls.get("webhook", "env:T_HOOK_URL"), "timeout": timeout,
                 "headers": {"Authorization": "env:T_HOOK_AUTH"}},
    }
    return TypeAdapter(dict[str, Notifier]).validate_python(raw)


def ctx(notifier_map: Mapping[str, NotifierConfig], *, alert: Alert = ALERT,
        target_name: str | None = None) -> ActionContext:
    target = HttpTarget(kind="http", base_url="http://svc:1") if target_name else None
    return ActionContext(calls=SDK_CALLS, decision_id="d1", rule="cpu", alert=alert, target_name=target_name,
                         target=target, dry_run=False, notifiers=notifier_map)


def assert_no_secret(*values: object) -> None:
    text = "\n".join(json.dumps(v, default=str) if not isinstance(v, str) else v for v in values)
    for secret in SECRETS:
        assert secret not in text


# --- params ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "raw"), [
    pytest.param(NotifySlack(), {"notifier": "oncall", "text": "hi"}, id="slack-minimal"),
    pytest.param(NotifySlack(), {"notifier": "a.b-c_1", "text": "x", "title": "T", "severity": "critical"},
                 id="slack-all"),
    pytest.param(NotifyWebhook(), {"notifier": "hook", "text": "x" * 10000}, id="webhook-long-text"),
    pytest.param(NotifyPagerDuty(), {"notifier": "pager", "text": "x", "event_action": "resolve",
                                     "dedup_key": "k" * 255}, id="pagerduty-resolve"),
])
def test_good_params_validate(action: Any, raw: dict[str, Any]) -> None:
    """Valid params parse and keep their values."""
    params = action.parse_params(raw)
    assert params.notifier == raw["notifier"]


@pytest.mark.parametrize(("action", "raw", "where"), [
    pytest.param(NotifySlack(), {"text": "x"}, "notifier", id="notifier-missing"),
    pytest.param(NotifySlack(), {"notifier": "../x", "text": "x"}, "notifier", id="notifier-path"),
    pytest.param(NotifySlack(), {"notifier": "a b", "text": "x"}, "notifier", id="notifier-space"),
    pytest.param(NotifySlack(), {"notifier": "oncall", "text": ""}, "text", id="text-empty"),
    pytest.param(NotifySlack(), {"notifier": "oncall", "text": "x" * 10001}, "text", id="text-too-long"),
    pytest.param(NotifySlack(), {"notifier": "oncall", "text": "x", "title": "t" * 151}, "title",
                 id="title-too-long"),
    pytest.param(NotifySlack(), {"notifier": "oncall", "text": "x", "severity": "error"}, "severity",
                 id="severity"),
    pytest.param(NotifySlack(), {"notifier": "oncall", "text": "x", "event_action": "resolve"},
                 "event_action", id="slack-has-no-event-action"),
    pytest.param(NotifyPagerDuty(), {"notifier": "pager", "text": "x", "event_action": "acknowledge"},
                 "event_action", id="pd-event-action"),
    pytest.param(NotifyPagerDuty(), {"notifier": "pager", "text": "x", "dedup_key": "k" * 256},
                 "dedup_key", id="pd-dedup-too-long"),
    pytest.param(NotifyWebhook(), {"notifier": "hook", "text": "x", "target": "api"}, "target",
                 id="unknown-param"),
])
def test_bad_params_are_refused(action: Any, raw: dict[str, Any], where: str) -> None:
    """Bad params are InvalidParams naming the action and the field."""
    with pytest.raises(InvalidParams, match=rf"^{action.name}: {where}: "):
        action.parse_params(raw)


# --- allow-list -----------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "team", "error"), [
    pytest.param(NotifySlack(), "oncall", None, id="configured-slack"),
    pytest.param(NotifySlack(), "nobody", TargetNotAllowed, id="unconfigured-name"),
    pytest.param(NotifySlack(), "pager", PermanentError, id="slack-action-pagerduty-notifier"),
    pytest.param(NotifyPagerDuty(), "hook", PermanentError, id="pagerduty-action-webhook-notifier"),
    pytest.param(NotifyWebhook(), "oncall", PermanentError, id="webhook-action-slack-notifier"),
])
async def test_templated_notifier_must_be_configured_and_of_the_right_kind(
        endpoint: Endpoint, action: Any, team: str, error: type[Exception] | None) -> None:
    """A label that renders the notifier name can only pick a configured notifier of the action's kind."""
    spec = ActionSpec(action=action.name, params={"notifier": "{{ labels.team }}", "text": "x"})
    alert = Alert(fingerprint="f", status="firing", labels={"alertname": "A", "team": team},
                  annotations={}, starts_at=ALERT.starts_at, starts_at_raw=ALERT.starts_at_raw)
    params = action.parse_params(spec.render_params(alert))
    c = ctx(notifiers(), alert=alert)
    if error is None:
        action.check_allowed(c, params)
    else:
        with pytest.raises(error, match=repr(team)):
            action.check_allowed(c, params)
    assert endpoint.seen == []


@pytest.mark.parametrize(("action", "raw"), [
    pytest.param(NotifyLog(), {"text": "x"}, id="log"),
    pytest.param(NotifySlack(), {"notifier": "oncall", "text": "x"}, id="slack"),
    pytest.param(NotifyPagerDuty(), {"notifier": "pager", "text": "x"}, id="pagerduty"),
    pytest.param(NotifyWebhook(), {"notifier": "hook", "text": "x"}, id="webhook"),
])
async def test_a_target_is_refused(endpoint: Endpoint, action: Any, raw: dict[str, Any]) -> None:
    """The notify actions take no target: given one, check_allowed is a PermanentError."""
    with pytest.raises(PermanentError, match="takes no target"):
        action.check_allowed(ctx(notifiers(), target_name="api"), action.parse_params(raw))


# --- plan -----------------------------------------------------------------------------------

async def test_slack_plan_is_the_exact_message_and_sends_nothing(endpoint: Endpoint) -> None:
    """The Slack plan names notifier and kind, lists what is sent, carries the body, and posts nothing."""
    action = NotifySlack()
    params = action.parse_params({"notifier": "oncall", "text": "CPU high on web-1"})
    plan = await action.plan(ctx(notifiers()), params)
    assert plan.steps == (
        "post a Slack message to notifier 'oncall' (slack)",
        "title: HighCPU",
        "text: CPU high on web-1",
        "severity: warning",
        "fields: rule=cpu, alert=HighCPU, fingerprint=fp123",
        "links: source=http://prom:9090/graph?g0.expr=up",
    )
    assert (plan.action, plan.target, plan.destructive) == ("notify.slack", None, False)
    assert plan.details["notifier"] == "oncall"
    assert plan.details["kind"] == "slack"
    assert plan.details["body"] == slack_body(Notice(title="HighCPU", text="CPU high on web-1",
                                                     fields=FIELDS, links=LINKS))
    assert_no_secret(plan.as_dict())
    assert endpoint.seen == []


async def test_pagerduty_plan_shows_the_event_with_the_key_as_a_reference(endpoint: Endpoint) -> None:
    """The PagerDuty plan shows action and default dedup_key; its body names the key, never its value."""
    action = NotifyPagerDuty()
    params = action.parse_params({"notifier": "pager", "text": "down", "event_action": "resolve"})
    plan = await action.plan(ctx(notifiers()), params)
    assert plan.steps[0] == ("send a PagerDuty resolve event to notifier 'pager' (pagerduty) "
                             "with dedup_key remediator-cpu-fp123")
    assert plan.details["body"]["routing_key"] == "<secret env:T_PD_KEY>"
    assert plan.details["body"]["event_action"] == "resolve"
    assert_no_secret(plan.as_dict())
    assert endpoint.seen == []


async def test_webhook_plan_names_header_names_only(endpoint: Endpoint) -> None:
    """The webhook plan lists configured header names, never their values or the URL."""
    action = NotifyWebhook()
    plan = await action.plan(ctx(notifiers()), action.parse_params({"notifier": "hook", "text": "x"}))
    assert plan.steps[:2] == ("POST JSON to notifier 'hook' (webhook)", "with headers Authorization")
    assert_no_secret(plan.as_dict())
    assert endpoint.seen == []


def test_subject_is_the_notifier() -> None:
    """Cooldowns and locks key a notify action by its notifier."""
    action = NotifySlack()
    params = action.parse_params({"notifier": "oncall", "text": "x"})
    assert action.subject(ctx({}), params) == "notifier/oncall"


# --- execute: exact requests ----------------------------------------------------------------

async def test_slack_execute_posts_exactly_the_block_kit_message(endpoint: Endpoint) -> None:
    """notify.slack posts one Block Kit message to the secret webhook path and reports 'slack 200'."""
    action = NotifySlack()
    params = action.parse_params({"notifier": "oncall", "text": "CPU *high* on <web-1>", "title": "CPU",
                                  "severity": "critical"})
    c = ctx(notifiers())
    result = await action.execute(c, params, await action.plan(c, params))
    assert result.summary == "notifier 'oncall': slack 200"
    assert result.details == {"notifier": "oncall", "kind": "slack", "sent": "slack 200"}
    [(path, headers, body)] = endpoint.seen
    assert path == f"/services/{SLACK_TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "remediator"
    assert body == {
        "text": "CPU\nCPU *high* on &lt;web-1&gt;",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "CPU"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "CPU *high* on &lt;web-1&gt;"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*rule*\ncpu"},
                {"type": "mrkdwn", "text": "*alert*\nHighCPU"},
                {"type": "mrkdwn", "text": "*fingerprint*\nfp123"},
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text":
                "severity: critical · <http://prom:9090/graph?g0.expr=up|source>"}]},
        ],
    }
    assert_no_secret(result.as_dict())


async def test_pagerduty_execute_triggers_with_the_default_dedup_key(endpoint: Endpoint) -> None:
    """notify.pagerduty posts the Events API v2 trigger with the revealed key and expects 202."""
    endpoint.status, endpoint.text = 202, '{"status":"success","dedup_key":"remediator-cpu-fp123"}'
    action = NotifyPagerDuty()
    params = action.parse_params({"notifier": "pager", "text": "CPU high\non web-1"})
    c = ctx(notifiers())
    result = await action.execute(c, params, await action.plan(c, params))
    assert result.summary == "notifier 'pager': pagerduty trigger dedup_key=remediator-cpu-fp123"
    [(path, headers, body)] = endpoint.seen
    assert (path, headers["Content-Type"]) == ("/v2/enqueue", "application/json")
    assert body == {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "dedup_key": "remediator-cpu-fp123",
        "payload": {
            "summary": "HighCPU: CPU high on web-1",
            "source": "remediator",
            "severity": "warning",
            "custom_details": {**FIELDS, "text": "CPU high\non web-1"},
        },
        "links": [{"href": "http://prom:9090/graph?g0.expr=up", "text": "source"}],
    }
    assert_no_secret(result.as_dict())


async def test_pagerduty_resolve_uses_the_given_dedup_key(endpoint: Endpoint) -> None:
    """event_action resolve sends 'resolve' with the rule's own dedup_key."""
    endpoint.status, endpoint.text = 202, "{}"
    action = NotifyPagerDuty()
    params = action.parse_params({"notifier": "pager", "text": "ok", "event_action": "resolve",
                                  "dedup_key": "cpu-web-1", "severity": "info"})
    c = ctx(notifiers())
    result = await action.execute(c, params, await action.plan(c, params))
    assert result.details["sent"] == "pagerduty resolve dedup_key=cpu-web-1"
    [(_, _, body)] = endpoint.seen
    assert (body["event_action"], body["dedup_key"], body["payload"]["severity"]) == (
        "resolve", "cpu-web-1", "info")


async def test_webhook_execute_posts_generic_json_with_configured_headers(endpoint: Endpoint) -> None:
    """notify.webhook posts {title, text, severity, dedup_key, resolve, fields, links, sections} with its
    headers."""
    endpoint.status = 204
    action = NotifyWebhook()
    params = action.parse_params({"notifier": "hook", "text": "line 1\nline 2", "severity": "info"})
    c = ctx(notifiers())
    result = await action.execute(c, params, await action.plan(c, params))
    assert result.details["sent"] == "webhook 204"
    [(path, headers, body)] = endpoint.seen
    assert path == f"/hook/{HOOK_TOKEN}"
    assert headers["Authorization"] == BEARER
    assert headers["Content-Type"] == "application/json"
    assert body == {"title": "HighCPU", "text": "line 1\nline 2", "severity": "info", "dedup_key": None,
                    "resolve": False, "fields": FIELDS, "links": LINKS, "sections": []}


async def test_deliver_reuses_a_given_session_and_reads_pagerdutys_key(endpoint: Endpoint) -> None:
    """With a caller's session, a trigger with no dedup_key reports the key PagerDuty generated."""
    endpoint.status, endpoint.text = 202, '{"status":"success","dedup_key":"generated-1"}'
    async with aiohttp.ClientSession() as session:
        sent = await deliver(notifiers()["pager"], Notice(title="Paused", text=""), session=session)
        assert not session.closed
    assert sent == "pagerduty trigger dedup_key=generated-1"
    [(_, _, body)] = endpoint.seen
    assert "dedup_key" not in body
    assert body["payload"] == {"summary": "Paused", "source": "remediator", "severity": "warning",
                               "custom_details": {}}


# --- pure payload limits --------------------------------------------------------------------

def test_slack_body_keeps_block_kit_limits_and_escapes_mentions() -> None:
    """Header ≤150, section ≤3000, ≤10 fields per section; <!channel> from a label cannot ping."""
    notice = Notice(title="t\n" + "x" * 200, text="<!channel> & " + "y" * 4000,
                    fields={f"k{i}": "v" for i in range(12)}, dedup_key="d-1")
    blocks = slack_body(notice)["blocks"]
    header = blocks[0]["text"]["text"]
    assert (len(header), header[:3], header[-1]) == (150, "t x", "…")
    section = blocks[1]["text"]["text"]
    assert (len(section), section[:23]) == (3000, "&lt;!channel&gt; &amp; ")
    assert [len(b["fields"]) for b in blocks[2:4]] == [10, 2]
    assert blocks[4]["elements"][0]["text"] == "severity: warning · dedup_key: d-1"
    fallback = slack_body(notice)["text"]
    assert len(fallback) == 3000
    assert "<!channel>" not in fallback


def test_pagerduty_summary_is_clipped_and_resolve_needs_a_key() -> None:
    """The summary is one line of at most 1024 characters; a resolve without dedup_key is permanent."""
    body = pagerduty_body(Notice(title="T", text="a\nb " + "z" * 2000), "key")
    assert len(body["payload"]["summary"]) == 1024
    assert body["payload"]["summary"].startswith("T: a b z")
    with pytest.raises(PermanentError, match="dedup_key"):
        pagerduty_body(Notice(title="T", text="x", resolve=True), "key")


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["oncall", "pager", "hook"])
@pytest.mark.parametrize(("status", "error"), [
    pytest.param(500, TemporaryError, id="500"),
    pytest.param(503, TemporaryError, id="503"),
    pytest.param(429, TemporaryError, id="429"),
    pytest.param(408, TemporaryError, id="408"),
    pytest.param(400, PermanentError, id="400"),
    pytest.param(403, PermanentError, id="403"),
    pytest.param(404, PermanentError, id="404"),
    pytest.param(302, PermanentError, id="302-not-followed"),
])
async def test_error_statuses_are_classified(endpoint: Endpoint, name: str, status: int,
                                             error: type[RemediationError]) -> None:
    """5xx/408/429 are temporary, other 4xx and redirects permanent; the message names kind and status."""
    endpoint.status, endpoint.text = status, "invalid_payload"
    endpoint.headers = {"Location": "http://elsewhere/"} if status == 302 else {}
    notifier = notifiers()[name]
    with pytest.raises(RemediationError) as caught:
        await deliver(notifier, Notice(title="t", text="x", dedup_key="k"))
    assert type(caught.value) is error
    assert str(caught.value) == f"{notifier.kind} notifier answered {status}: invalid_payload"
    assert len(endpoint.seen) == 1
    assert_no_secret(str(caught.value))


async def test_retry_after_is_passed_on(endpoint: Endpoint) -> None:
    """A 429 with Retry-After gives the executor that delay."""
    endpoint.status, endpoint.headers = 429, {"Retry-After": "7"}
    with pytest.raises(TemporaryError) as caught:
        await deliver(notifiers()["oncall"], Notice(title="t", text="x"))
    assert caught.value.retry_after == 7.0


async def test_pagerduty_wants_202(endpoint: Endpoint) -> None:
    """A 200 from the PagerDuty URL is not the Events API: permanent."""
    endpoint.status = 200
    with pytest.raises(PermanentError, match=r"^pagerduty notifier answered 200"):
        await deliver(notifiers()["pager"], Notice(title="t", text="x"))


@pytest.mark.parametrize(("name", "echo", "message"), [
    pytest.param("pager", f"bad key {PD_KEY}", "bad key <secret env:T_PD_KEY>", id="routing-key"),
    pytest.param("oncall", f"no_service /services/{SLACK_TOKEN}", "no_service <secret env:T_SLACK_URL>",
                 id="slack-url-path"),
    pytest.param("hook", f"who is {BEARER}?", "who is <secret env:T_HOOK_AUTH>?", id="header"),
])
async def test_an_echoed_secret_is_scrubbed_from_the_message(endpoint: Endpoint, name: str, echo: str,
                                                            message: str) -> None:
    """A server that echoes the request back cannot put a secret into the error message."""
    endpoint.status, endpoint.text = 400, echo
    notifier = notifiers()[name]
    with pytest.raises(PermanentError) as caught:
        await deliver(notifier, Notice(title="t", text="x"))
    assert str(caught.value) == f"{notifier.kind} notifier answered 400: {message}"
    assert_no_secret(str(caught.value))


async def test_timeout_is_temporary(endpoint: Endpoint) -> None:
    """A notifier that does not answer within its timeout is a TemporaryError naming the kind."""
    endpoint.hang = True
    with pytest.raises(TemporaryError, match=r"^webhook notifier: no answer within 0\.05s$") as caught:
        await deliver(notifiers(timeout=0.05)["hook"], Notice(title="t", text="x"))
    assert_no_secret(str(caught.value))


async def test_connection_refused_is_temporary(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening is a TemporaryError that names the kind, not the URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("T_DEAD", f"http://127.0.0.1:{port}/services/{SLACK_TOKEN}")
    with pytest.raises(TemporaryError, match=r"^slack notifier: request failed: \w+$") as caught:
        await deliver(notifiers(slack="env:T_DEAD")["oncall"], Notice(title="t", text="x"))
    assert_no_secret(str(caught.value))
    assert str(port) not in str(caught.value)


@pytest.mark.parametrize("url", [
    pytest.param(f"ftp://{HOOK_TOKEN}/x", id="not-http"),
    pytest.param(f"{HOOK_TOKEN}/x", id="relative"),
    pytest.param(f"http:///{HOOK_TOKEN}", id="no-host"),
])
async def test_invalid_url_is_permanent(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch,
                                        url: str) -> None:
    """A configured URL that is not an absolute http(s) URL is a PermanentError that does not repeat it."""
    monkeypatch.setenv("T_BAD", url)
    with pytest.raises(PermanentError, match=r"^webhook notifier: the configured URL") as caught:
        await deliver(notifiers(webhook="env:T_BAD")["hook"], Notice(title="t", text="x"))
    assert_no_secret(str(caught.value))
