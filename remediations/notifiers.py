"""Notifier configuration: where messages go (Slack, PagerDuty, a generic webhook).

Parsed by ``receiver.settings`` (the ``notifiers:`` map) and handed to actions through
``ActionContext.notifiers``; the ``notify.*`` actions in ``remediations.notify.actions`` and the
guards' announcements (approvals, blast radius, circuit breaker) send through
``remediations.notify.delivery.deliver``. URLs and keys are secret references.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from remediations.secrets import SecretRef


class _Notifier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float = Field(default=10.0, gt=0, le=120)


class SlackNotifier(_Notifier):
    """A Slack incoming webhook (``url`` is the secret webhook URL)."""

    kind: Literal["slack"]
    url: SecretRef


class PagerDutyNotifier(_Notifier):
    """PagerDuty Events API v2 (``routing_key`` is the integration key)."""

    kind: Literal["pagerduty"]
    routing_key: SecretRef
    url: str = "https://events.pagerduty.com/v2/enqueue"


class WebhookNotifier(_Notifier):
    """Any HTTP endpoint taking JSON; ``headers`` values are secret references."""

    kind: Literal["webhook"]
    url: SecretRef
    headers: dict[str, SecretRef] = Field(default_factory=dict)


Notifier = Annotated[
    SlackNotifier | PagerDutyNotifier | WebhookNotifier, Field(discriminator="kind")
]
NotifierConfig = SlackNotifier | PagerDutyNotifier | WebhookNotifier
