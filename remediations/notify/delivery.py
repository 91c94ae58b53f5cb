"""Delivery of one :class:`Notice` to one configured notifier (Slack, PagerDuty, a webhook).

Called by the ``notify.*`` actions in ``remediations.notify.actions`` and, for their
announcements (approval requests, blast-radius pause, escalation), by ``receiver.flow``
(``receiver.flow.announce``; the guards and escalations build its :class:`Notice`). Slack
messages are Block Kit, rendered by ``remediations.notify.blocks``. The secret URL, routing
key and header values are revealed only into the request itself: every error message
names the notifier kind and the HTTP status, never where it was sent.

5xx, 408, 429, timeouts and connection errors are :class:`TemporaryError` (with the
``Retry-After`` the server gave, bounded); any other unexpected answer is
:class:`PermanentError`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from remediations.base import PermanentError, TemporaryError
from remediations.notifiers import NotifierConfig, PagerDutyNotifier, SlackNotifier, WebhookNotifier
from remediations.notify.blocks import slack_body
from remediations.notify.notice import Notice, clip, one_line
from remediations.secrets import Secret

__all__ = ["Notice", "body_for", "clip", "deliver", "one_line", "pagerduty_body", "slack_body",
           "webhook_body"]

SOURCE = "remediator"
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_DEDUP_KEY_MAX = 255
_TEMPORARY_STATUSES = frozenset({408, 425, 429})
_RETRY_AFTER_MAX = 300.0
_EXCERPT = 200
_USER_AGENT = "remediator"


def pagerduty_body(notice: Notice, routing_key: str) -> dict[str, Any]:
    """The Events API v2 event; ``routing_key`` is the revealed key, or its reference for a plan."""
    if notice.resolve and not notice.dedup_key:
        raise PermanentError("pagerduty: a resolve event needs a dedup_key")
    title = one_line(notice.title)
    summary = f"{title}: {one_line(notice.text)}" if notice.text.strip() else title
    details: dict[str, str] = dict(notice.fields)
    if notice.text.strip():
        details["text"] = notice.text
    details.update(notice.sections)
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
        "sections": [{"title": title, "text": text} for title, text in notice.sections],
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
