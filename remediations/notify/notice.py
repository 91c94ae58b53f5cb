"""One message to people, independent of where it goes: :class:`Notice` and its :class:`Button`.

Built by the ``notify.*`` actions (``remediations.notify.actions``) and by the guard pipeline
in ``receiver`` (approval requests, pauses, escalations); rendered per notifier by
``remediations.notify.delivery`` (PagerDuty, webhook) and ``remediations.notify.blocks``
(Slack Block Kit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Button:
    """A button under a Slack message: an interaction (``action_id`` and ``value`` are sent
    to ``POST /slack/interactions``), or a link when ``url`` is set. Other notifiers show
    the links of the notice instead."""

    text: str
    action_id: str
    value: str = ""
    style: Literal["primary", "danger"] | None = None
    url: str | None = None
    confirm: str | None = None
    """Asks "are you sure?" with this text before the interaction is sent."""


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
    sections: tuple[tuple[str, str], ...] = ()
    """Titled parts of the body (the plan, the diagnosis): Slack sections, PagerDuty details."""
    buttons: tuple[Button, ...] = ()
    """Slack only: the message's buttons (Approve / Reject)."""


def one_line(text: str) -> str:
    """Whitespace runs, newlines included, folded into single spaces."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
