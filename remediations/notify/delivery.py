"""Delivery of one :class:`Notice` to one configured notifier (Slack, PagerDuty, a webhook).

Called by the ``notify.*`` actions in ``remediations.notify.actions`` and, for their
announcements (approval requests, blast-radius pause, escalation), by ``receiver.flow``
(``receiver.flow.announce``; the guards and escalations build its :class:`Notice`). The secret URL, routing
key and header values are revealed only into the request itself: every error message
names the notifier kind and the HTTP status, never where it was sent.

5xx, 408, 429, timeouts and connection errors are :class:`TemporaryError` (with the
``Retry-After`` the server gave, bounded); any other unexpected answer is
:class:`PermanentError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from remediations.base import PermanentError, TemporaryError
from remediations.notifiers import NotifierConfig, PagerDutyNotifier, SlackNotifier, WebhookNotifier
from remediations.secrets import Secret

Severity = Literal["info", "warning", "critical"]

SOURCE = "remediator"
SLACK_HEADER_MAX = 150  # Block Kit header block: plain_text, at most 150 characters
SLACK_SECTION_MAX = 3000  # section text and context mrkdwn elements
SLACK_FIELD_MAX = 2000  # one section field
SLACK_FIELDS_PER_SECTION = 10
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_DEDUP_KEY_MAX = 255
_TEMPORARY_STATUSES = frozenset({408, 425, 429})
_RETRY_AFTER_MAX = 300.0
_EXCERPT = 200
_USER_AGENT = "remediator"


@dataclass(frozen=True, slots=True)
class Notice:
    """One message, independent of where it goes."""

    title: str
    """One line (newlines are folded into spaces when sent)."""
    text: str
    """The body; may be multi-line."""
    severity: Severity = "warning"
    dedup_key: str | None = None
    """PagerDuty's ``dedup_key``; Slack shows it, the webhook sends it."""
    resolve: bool = False
    """PagerDuty: ``event_action`` resolve instead of trigger; others carry the flag."""
    fields: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)


def one_line(text: str) -> str:
    """Whitespace runs, newlines included, folded into single spaces."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str, limit: int) -> str:
    """Slack mrkdwn with &, <, > escaped (no label can ping @channel), cut to ``limit``."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(escaped) <= limit:
        return escaped
    return re.sub(r"&[a-z]*$", "", escaped[: limit - 1]) + "…"


def slack_body(notice: Notice) -> dict[str, Any]:
    """The incoming-webhook JSON: fallback ``text`` and Block Kit ``blocks``."""
    title = one_line(notice.title) or "remediator"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, SLACK_HEADER_MAX)}},
    ]
    if notice.text.strip():
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _mrkdwn(notice.text, SLACK_SECTION_MAX)}})
    pairs = [
        {"type": "mrkdwn", "text": _mrkdwn(f"*{k}*\n{v}", SLACK_FIELD_MAX)}
        for k, v in notice.fields.items()
    ]
    blocks.extend({"type": "section", "fields": pairs[start:start + SLACK_FIELDS_PER_SECTION]}
                  for start in range(0, len(pairs), SLACK_FIELDS_PER_SECTION))
    context = [f"severity: {notice.severity}"]
    if notice.dedup_key:
        context.append(f"dedup_key: {_mrkdwn(notice.dedup_key, PAGERDUTY_DEDUP_KEY_MAX)}")
    if notice.resolve:
        context.append("resolved")
    context += [f"<{_mrkdwn(url, 1000)}|{_mrkdwn(name, 200)}>" for name, url in notice.links.items()]
    blocks.append({"type": "context",
                   "elements": [{"type": "mrkdwn", "text": clip(" · ".join(context), SLACK_SECTION_MAX)}]})
    fallback = f"{title}\n{notice.text}" if notice.text.strip() else title
    # The fallback is rendered as mrkdwn too (notifications, old clients): escaped the same way.
    return {"text": _mrkdwn(fallback, SLACK_SECTION_MAX), "blocks": blocks}


def pagerduty_body(notice: Notice, routing_key: str) -> dict[str, Any]:
    """The Events API v2 event; ``routing_key`` is the revealed key, or its reference for a plan."""
    if notice.resolve and not notice.dedup_key:
        raise PermanentError("pagerduty: a resolve event needs a dedup_key")
    title = one_line(notice.title)
    summary = f"{title}: {one_line(notice.text)}" if notice.text.strip() else title
    details: dict[str, str] = dict(notice.fields)
    if notice.text.strip():
        details["text"] = notice.text
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if notice.resolve else "trigger",
        "payload": {
            "summary": clip(summary or SOURCE, PAGERDUTY_SUMMARY_MAX),
            "source": SOURCE,
            "severity": notice.severity,
            "custom_details": details,
        },
    }
    if notice.dedup_key:
        body["dedup_key"] = notice.dedup_key[:PAGERDUTY_DEDUP_KEY_MAX]
    if notice.links:
        body["links"] = [{"href": url, "text": name} for name, url in notice.links.items()]
    return body


def webhook_body(notice: Notice) -> dict[str, Any]:
    """The generic JSON a ``webhook`` notifier receives."""
    return {
        "title": one_line(notice.title),
        "text": notice.text,
        "severity": notice.severity,
        "dedup_key": notice.dedup_key,
        "resolve": notice.resolve,
        "fields": dict(notice.fields),
        "links": dict(notice.links),
    }


def body_for(notifier: NotifierConfig, notice: Notice, *, reveal: bool) -> dict[str, Any]:
    """What :func:`deliver` posts; with ``reveal=False`` the routing key stays a reference."""
    if isinstance(notifier, SlackNotifier):
        return slack_body(notice)
    if isinstance(notifier, PagerDutyNotifier):
        key = notifier.routing_key.reveal() if reveal else str(notifier.routing_key)
        return pagerduty_body(notice, key)
    return webhook_body(notice)


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return min(float(value), _RETRY_AFTER_MAX) if value.isdigit() else None


def _scrub(text: str, secrets: list[Secret]) -> str:
    """An answer's excerpt, one line, with any echoed secret replaced by its reference.

    A secret URL's path is secret too (Slack's token is the path), so it goes as well.
    """
    for secret in secrets:
        value = secret.reveal()
        parts = urlsplit(value)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        text = text.replace(value, str(secret))
        if parts.scheme and len(path) > 1:
            text = text.replace(path, str(secret))
    return clip(one_line(text), _EXCERPT)


async def deliver(
    notifier: NotifierConfig, notice: Notice, *, session: aiohttp.ClientSession | None = None
) -> str:
    """Send ``notice``; return what was sent ("slack 200", "pagerduty trigger dedup_key=…")."""
    kind = notifier.kind
    body = body_for(notifier, notice, reveal=True)
    headers = {"User-Agent": _USER_AGENT}
    secrets: list[Secret] = []
    if isinstance(notifier, PagerDutyNotifier):
        url = notifier.url
        secrets.append(notifier.routing_key)
    else:
        url = notifier.url.reveal()
        secrets.append(notifier.url)
    if isinstance(notifier, WebhookNotifier):
        headers |= {name: value.reveal() for name, value in notifier.headers.items()}
        secrets += notifier.headers.values()
    timeout = aiohttp.ClientTimeout(total=notifier.timeout)
    try:
        if session is None:
            async with aiohttp.ClientSession() as own:
                status, answer, retry_after = await _post(own, url, body, headers, timeout)
        else:
            status, answer, retry_after = await _post(session, url, body, headers, timeout)
    except TimeoutError:
        raise TemporaryError(f"{kind} notifier: no answer within {notifier.timeout}s") from None
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError):
        raise PermanentError(f"{kind} notifier: the configured URL is not a valid http(s) URL") from None
    except aiohttp.ClientError as exc:
        raise TemporaryError(f"{kind} notifier: request failed: {exc.__class__.__name__}") from None
    expected = (status == 202) if kind == "pagerduty" else (200 <= status < 300)
    if not expected:
        excerpt = _scrub(answer, secrets)
        message = f"{kind} notifier answered {status}" + (f": {excerpt}" if excerpt else "")
        if status >= 500 or status in _TEMPORARY_STATUSES:
            raise TemporaryError(message, retry_after=retry_after)
        raise PermanentError(message)
    if isinstance(notifier, PagerDutyNotifier):
        sent = body.get("dedup_key") or _answered_dedup_key(answer)
        return f"pagerduty {body['event_action']} dedup_key={sent}"
    return f"{kind} {status}"


async def _post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str],
    limit: aiohttp.ClientTimeout,
) -> tuple[int, str, float | None]:
    async with session.post(url, json=body, headers=headers, timeout=limit, allow_redirects=False) as resp:
        answer = (await resp.content.read(4096)).decode("utf-8", "replace")
        return resp.status, answer, _retry_after(resp)


def _answered_dedup_key(answer: str) -> str:
    """The ``dedup_key`` PagerDuty generated for a trigger sent without one."""
    try:
        data = json.loads(answer)
    except ValueError:
        return "?"
    key = data.get("dedup_key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else "?"
