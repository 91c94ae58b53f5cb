"""Slack Block Kit: a :class:`remediations.notify.notice.Notice` as a Slack message.

Called by ``remediations.notify.delivery`` for Slack notifiers (incoming webhooks) and by
``receiver.http.slackreply`` for the messages it posts to an interaction's
``response_url`` (the original message updated with the decision, then with the run's
result; the ephemeral "not allowed"). Every text is cut to Block Kit's limits and escaped
(no label can ping ``@channel`` or forge a link); at most 50 blocks.
"""

from __future__ import annotations

import re
from typing import Any

from remediations.notify.notice import Button, Notice, clip, one_line

SLACK_HEADER_MAX = 150  # Block Kit header block: plain_text, at most 150 characters
SLACK_SECTION_MAX = 3000  # section text and context mrkdwn elements
SLACK_FIELD_MAX = 2000  # one section field
SLACK_FIELDS_PER_SECTION = 10
SLACK_BUTTON_TEXT_MAX = 75
SLACK_BUTTON_VALUE_MAX = 2000
SLACK_BLOCKS_MAX = 50
APPROVE = "remediator.approve"
"""The ``action_id`` of an Approve button; its ``value`` is the approval id."""
REJECT = "remediator.reject"
"""The ``action_id`` of a Reject button; its ``value`` is the approval id."""


def mrkdwn(text: str, limit: int) -> str:
    """Slack mrkdwn with &, <, > escaped (no label can ping @channel), cut to ``limit``."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(escaped) <= limit:
        return escaped
    return re.sub(r"&[a-z]*$", "", escaped[: limit - 1]) + "…"


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(one_line(text), limit) or "-"}


def _button(b: Button) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "text": _plain(b.text, SLACK_BUTTON_TEXT_MAX),
                               "action_id": b.action_id[:255]}
    if b.value:
        element["value"] = b.value[:SLACK_BUTTON_VALUE_MAX]
    if b.style:
        element["style"] = b.style
    if b.url:
        element["url"] = b.url[:3000]
    if b.confirm:
        element["confirm"] = {"title": _plain(b.text, 100),
                              "text": {"type": "mrkdwn", "text": mrkdwn(b.confirm, 300)},
                              "confirm": _plain(b.text, 30), "deny": _plain("Cancel", 30)}
    return element


def slack_body(notice: Notice) -> dict[str, Any]:
    """The message JSON: fallback ``text`` and Block Kit ``blocks`` (header, text, titled
    sections, fields, buttons, then a context line with severity, dedup key and links)."""
    title = one_line(notice.title) or "remediator"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, SLACK_HEADER_MAX)}},
    ]
    if notice.text.strip():
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": mrkdwn(notice.text, SLACK_SECTION_MAX)}})
    for heading, body in notice.sections:
        text = f"*{mrkdwn(one_line(heading), 200)}*\n{mrkdwn(body, SLACK_SECTION_MAX - 210)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    pairs = [
        {"type": "mrkdwn", "text": mrkdwn(f"*{k}*\n{v}", SLACK_FIELD_MAX)}
        for k, v in notice.fields.items()
    ]
    blocks.extend({"type": "section", "fields": pairs[start:start + SLACK_FIELDS_PER_SECTION]}
                  for start in range(0, len(pairs), SLACK_FIELDS_PER_SECTION))
    del blocks[SLACK_BLOCKS_MAX - 2:]  # room for the buttons and the context line
    if notice.buttons:
        blocks.append({"type": "actions", "block_id": "remediator-actions",
                       "elements": [_button(b) for b in notice.buttons[:25]]})
    context = [f"severity: {notice.severity}"]
    if notice.dedup_key:
        context.append(f"dedup_key: {mrkdwn(notice.dedup_key, 255)}")
    if notice.resolve:
        context.append("resolved")
    context += [f"<{mrkdwn(url, 1000)}|{mrkdwn(name, 200)}>" for name, url in notice.links.items()]
    blocks.append({"type": "context",
                   "elements": [{"type": "mrkdwn", "text": clip(" · ".join(context), SLACK_SECTION_MAX)}]})
    fallback = f"{title}\n{notice.text}" if notice.text.strip() else title
    # The fallback is rendered as mrkdwn too (notifications, old clients): escaped the same way.
    return {"text": mrkdwn(fallback, SLACK_SECTION_MAX), "blocks": blocks}
