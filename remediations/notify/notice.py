"""One message to people, independent of where it goes: :class:`Notice` and its :class:`Button`;
:func:`web_link`, the only links a notice carries (absolute http(s), encoded for every format).

Built by the ``notify.*`` actions (``remediations.notify.actions``) and by the guard pipeline
in ``receiver`` (approval requests, pauses, escalations); rendered per notifier by
``remediations.notify.delivery`` (PagerDuty, webhook) and ``remediations.notify.blocks``
(Slack Block Kit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import quote, urlsplit

Severity = Literal["info", "warning", "critical"]
_URL_KEEP = "/:?#[]@!$&'()*+,;=%~-._"
"""What a link keeps as written; anything else (``|``, ``<``, ``>``, quotes, spaces,
non-ASCII) is percent-encoded so no format's link syntax can be ended or re-labelled."""


def web_link(url: str) -> str | None:
    """``url`` as a link safe in every notifier format, or None when it is not an absolute
    http(s) URL (``javascript:``, ``data:``, scheme-relative, control characters: no link).

    ``https://evil/x|Approve in remediator`` keeps its address and loses the power to name
    itself: Slack shows it as ``https://evil/x%7CApprove…``, not as "Approve in remediator".
    """
    if not url or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url) or url != url.strip():
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # a bracketed host that is not an IPv6 address
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return quote(url, safe=_URL_KEEP)


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

    def __post_init__(self) -> None:
        # Every format renders links from here: only http(s), each made safe once (web_link).
        links = {name: safe for name, url in self.links.items() if (safe := web_link(url)) is not None}
        buttons = tuple(b if b.url is None else replace(b, url=web_link(b.url)) for b in self.buttons)
        object.__setattr__(self, "links", links)
        object.__setattr__(self, "buttons", tuple(b for b, o in zip(buttons, self.buttons, strict=True)
                                                  if o.url is None or b.url is not None))


def one_line(text: str) -> str:
    """Whitespace runs, newlines included, folded into single spaces."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
