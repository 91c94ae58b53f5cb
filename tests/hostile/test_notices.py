"""Hostile alert text and links in every notifier format.

An alert's ``generatorURL``, labels and annotations reach people through Slack (Block Kit
mrkdwn, incoming webhooks and the interaction replies), PagerDuty events and generic
webhook JSON, from the ``notify.*`` actions and from the approval notice. A ``|`` in
``generatorURL`` set a Slack link's text (``<https://evil/x|Approve in remediator|source>``)
and ``javascript:`` passed. Each row renders one hostile value through one source and one
format: every link made is an absolute http(s) URL that cannot end or re-label itself, and
text never becomes a link or a mention.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from receiver.flow.notices import approval_notice
from receiver.store.values import Approval, ApprovalStatus
from remediations.base import ActionContext
from remediations.notifiers import NotifierConfig, PagerDutyNotifier, SlackNotifier, WebhookNotifier
from remediations.notify.actions import NotifyPagerDuty, NotifySlack, NotifyWebhook
from remediations.notify.delivery import body_for
from remediations.notify.notice import Notice
from rules.alert import Alert
from tests.support.approvals import stored_request
from tests.support.sdkpool import SDK_CALLS


@pytest.fixture(autouse=True)
def notifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The three notifiers, their secrets from the environment (for this test only)."""
    for name in ("HOSTILE_SLACK_URL", "HOSTILE_HOOK_URL"):
        monkeypatch.setenv(name, "https://hooks.example/secret")
    monkeypatch.setenv("HOSTILE_PD_KEY", "k" * 32)
    NOTIFIERS.update({
        "slack": SlackNotifier(kind="slack", url="env:HOSTILE_SLACK_URL"),
        "pagerduty": PagerDutyNotifier(kind="pagerduty", routing_key="env:HOSTILE_PD_KEY"),
        "webhook": WebhookNotifier(kind="webhook", url="env:HOSTILE_HOOK_URL"),
    })


NOTIFIERS: dict[str, NotifierConfig] = {}
ACTIONS = {"slack": NotifySlack(), "pagerduty": NotifyPagerDuty(), "webhook": NotifyWebhook()}
OUR_NAMES = {"source", "Alert source", "Open in the console"}
SLACK_LINK = re.compile(r"<([^<>]*)>")


def from_action(kind: str, generator_url: str = "", labels: dict[str, str] | None = None,
                text: str = "restart {{x}}") -> dict[str, Any]:
    alert = Alert(fingerprint="f00d", status="firing", labels=labels or {"alertname": "HighErrorRate"},
                  annotations={}, starts_at=datetime(2026, 1, 1, tzinfo=UTC),
                  starts_at_raw="2026-01-01T00:00:00Z", generator_url=generator_url)
    ctx = ActionContext(decision_id="d", rule="r", alert=alert, target_name=None, target=None, dry_run=True,
                        calls=SDK_CALLS, notifiers=NOTIFIERS)
    action: Any = ACTIONS[kind]
    params = action.parse_params({"notifier": kind, "text": text})
    notice: Notice = action.notice(ctx, params)
    return body_for(NOTIFIERS[kind], notice, reveal=False)


def from_approval(kind: str, generator_url: str = "", labels: dict[str, str] | None = None,
                  text: str = "") -> dict[str, Any]:
    approval = Approval(id="a1", status=ApprovalStatus.PENDING, created_at=0.0, expires_at=60.0,
                        decision="d1", rule="r", fingerprint="f00d",
                        payload=stored_request(generator_url=generator_url,
                                               annotations={"summary": text} if text else None,
                                               labels=labels))
    notice = approval_notice(approval, buttons=True, console="https://remediator.example.com/")
    return body_for(NOTIFIERS[kind], notice, reveal=False)


SOURCES: dict[str, Callable[..., dict[str, Any]]] = {"action": from_action, "approval": from_approval}


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def links(kind: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """Every link the format makes: (url, its text)."""
    if kind == "pagerduty":
        return [(link["href"], link["text"]) for link in body.get("links", [])]
    if kind == "webhook":
        return [(url, name) for name, url in body["links"].items()]
    # in mrkdwn a link's & < > are escaped (Slack reads &amp; back as &)
    found = [(html.unescape(m.group(1).partition("|")[0]), m.group(1).partition("|")[2])
             for text in strings(body) for m in SLACK_LINK.finditer(text)]
    buttons = [(e["url"], e["text"]["text"]) for block in body["blocks"] if block["type"] == "actions"
               for e in block["elements"] if "url" in e]
    return found + buttons


def is_safe(url: str) -> bool:
    return re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:@]+(/[^\s|<>\"`{}\\^]*)?", url) is not None


URLS = [
    pytest.param("https://evil/x|Approve in remediator", "https://evil/x%7CApprove%20in%20remediator",
                 id="pipe-sets-the-link-text"),
    pytest.param("javascript:alert(document.cookie)", None, id="javascript"),
    pytest.param("JaVaScRiPt:alert(1)//https://ok/", None, id="javascript-mixed-case"),
    pytest.param("data:text/html,<script>alert(1)</script>", None, id="data"),
    pytest.param("vbscript:msgbox", None, id="vbscript"),
    pytest.param("//evil.example/x", None, id="scheme-relative"),
    pytest.param("https:evil", None, id="no-host"),
    pytest.param("ftp://files.example/x", None, id="ftp"),
    pytest.param(" https://ok.example/x", None, id="leading-space"),
    pytest.param("https://ok.example/x\n<!channel>", None, id="newline-then-mention"),
    pytest.param("https://ok.example/a>b<!channel>", "https://ok.example/a%3Eb%3C!channel%3E",
                 id="angle-brackets-end-the-link"),
    pytest.param('https://ok.example/"onmouseover="x', "https://ok.example/%22onmouseover=%22x", id="quote"),
    pytest.param("https://[not-ipv6/x", None, id="broken-host"),
    pytest.param("http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
                 "http://prometheus:9090/graph?g0.expr=up&g0.tab=1", id="a-real-generator-url"),
]


@pytest.mark.parametrize("source", ["action", "approval"])
@pytest.mark.parametrize("kind", ["slack", "pagerduty", "webhook"])
@pytest.mark.parametrize(("url", "expected"), URLS)
def test_only_http_links_that_cannot_rename_themselves(source: str, kind: str, url: str,
                                                      expected: str | None) -> None:
    made = links(kind, SOURCES[source](kind, generator_url=url))
    for link, text in made:
        assert is_safe(link), link
        assert text in OUR_NAMES
    alert_links = [link for link, text in made if text in ("source", "Alert source")]
    assert alert_links == ([] if expected is None else [expected])


TEXTS = [
    pytest.param("<!channel> restart now", id="channel-mention"),
    pytest.param("<https://evil.example/x|Approve in remediator>", id="forged-link"),
    pytest.param("<@U123456> approve this", id="user-mention"),
    pytest.param("&lt;!here&gt;", id="pre-escaped-mention"),
    pytest.param("a > b < c & d", id="bare-brackets"),
    pytest.param("<javascript:alert(1)|click>", id="javascript-link"),
]


@pytest.mark.parametrize("source", ["action", "approval"])
@pytest.mark.parametrize("text", TEXTS)
def test_slack_text_never_becomes_a_link_or_mention(source: str, text: str) -> None:
    body = SOURCES[source]("slack", labels={"alertname": "HighErrorRate", "service": text}, text=text)
    for s in strings(body):
        for m in SLACK_LINK.finditer(s):
            assert is_safe(m.group(1).partition("|")[0]), s
        assert "<!" not in s
        assert "<@" not in s
    assert any("&lt;" in s or "&amp;" in s or "&gt;" in s for s in strings(body))
