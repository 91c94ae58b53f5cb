"""Notifications: ``notify.log``, ``notify.slack``, ``notify.pagerduty``, ``notify.webhook``.

Run by ``receiver.flow.workers`` like any action; useful as the first step of a runbook
("tell the on-call what would be done"), for status updates and for escalation. The
Slack, PagerDuty and webhook actions send to a notifier named in the service config's
``notifiers:`` map (``ActionContext.notifiers``) and take no ``target``. Their plan is
the exact JSON that would be posted, naming the notifier and its kind, never its URL or
key. They send through ``remediations.notify.delivery``, as the guards' announcements
and escalations in ``receiver.flow`` do.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from remediations.base import Action, ActionContext, PermanentError, Plan, Result, TargetNotAllowed
from remediations.notifiers import NotifierConfig, WebhookNotifier
from remediations.notify.delivery import (
    PAGERDUTY_DEDUP_KEY_MAX,
    Notice,
    body_for,
    clip,
    deliver,
    one_line,
)
from remediations.notify.notice import web_link

__all__ = ["NotifyLog", "NotifyPagerDuty", "NotifySlack", "NotifyWebhook"]

_log = structlog.get_logger("remediator.notify")
_NOTIFIER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # as receiver.settings names notifiers
_STEP_EXCERPT = 500


def _refuse_target(action: str, ctx: ActionContext) -> None:
    """The notify actions take no target; a rule (or a caller) that gives one is wrong."""
    if ctx.target is not None or ctx.target_name is not None:
        raise PermanentError(f"{action} takes no target, got {ctx.target_name!r}")


class LogParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=4000, description="The message")
    level: Literal["info", "warning", "error"] = Field(default="info", description="Log level")


class NotifyLog(Action[LogParams]):
    """Write one structured log line (event ``notify.log``) with the alert's identity."""

    name = "notify.log"
    description = "Write a structured log line with the message and the alert's identity"
    params_model = LogParams
    timeout = 5.0

    def check_allowed(self, ctx: ActionContext, params: LogParams) -> None:
        _refuse_target(self.name, ctx)

    async def plan(self, ctx: ActionContext, params: LogParams) -> Plan:
        return Plan(
            action=self.name,
            target=None,
            steps=(f"log at {params.level}: {params.text}",),
            destructive=False,
            details={"level": params.level, "text": params.text},
        )

    async def execute(self, ctx: ActionContext, params: LogParams, plan: Plan) -> Result:
        log = getattr(_log, params.level)
        log(
            "notify.log",
            text=params.text,
            rule=ctx.rule,
            fingerprint=ctx.alert.fingerprint,
            decision=ctx.decision_id,
        )
        return Result(summary=f"logged at {params.level}", details={"text": params.text})


class NoticeParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    notifier: str = Field(max_length=100, pattern=_NOTIFIER_NAME,
                          description="Name of a notifier in the service config's notifiers map")
    text: str = Field(min_length=1, max_length=10000,
                      description="The message (Slack shows the first 3000 characters)")
    title: str | None = Field(default=None, min_length=1, max_length=150,
                              description="One line; default: the alert name")
    severity: Literal["info", "warning", "critical"] = Field(
        default="warning", description="info, warning or critical")


class PagerDutyParams(NoticeParams):
    event_action: Literal["trigger", "resolve"] = Field(
        default="trigger", description="trigger opens (or adds to) an incident; resolve closes it")
    dedup_key: str | None = Field(
        default=None, min_length=1, max_length=PAGERDUTY_DEDUP_KEY_MAX,
        description="Correlates trigger and resolve; default: remediator-RULE-FINGERPRINT")


NP = TypeVar("NP", bound=NoticeParams)


class _NotifyAction(Action[NP]):
    """Send one :class:`Notice` built from the params and the alert to a named notifier."""

    kind: ClassVar[str]
    timeout = 30.0

    def subject(self, ctx: ActionContext, params: NP) -> str:
        return f"notifier/{params.notifier}"

    def _notifier(self, ctx: ActionContext, params: NP) -> NotifierConfig:
        notifier = ctx.notifiers.get(params.notifier)
        if notifier is None:
            raise TargetNotAllowed(f"notifier {params.notifier!r} is not in the service config")
        if notifier.kind != self.kind:
            raise PermanentError(f"{self.name} needs a {self.kind} notifier; "
                                 f"{params.notifier!r} is a {notifier.kind} notifier")
        return notifier

    def check_allowed(self, ctx: ActionContext, params: NP) -> None:
        _refuse_target(self.name, ctx)
        self._notifier(ctx, params)

    def notice(self, ctx: ActionContext, params: NP) -> Notice:
        """The notice these params send for this alert (plan and execute build the same one)."""
        alert = ctx.alert
        source = web_link(alert.generator_url)
        links = {"source": source} if source is not None else {}
        return Notice(
            title=params.title or alert.name or ctx.rule,
            text=params.text,
            severity=params.severity,
            fields={"rule": ctx.rule, "alert": alert.name, "fingerprint": alert.fingerprint},
            links=links,
        )

    def _head(self, name: str, notice: Notice, notifier: NotifierConfig) -> str:
        return f"send to notifier {name!r} ({notifier.kind})"

    async def plan(self, ctx: ActionContext, params: NP) -> Plan:
        notifier = self._notifier(ctx, params)
        notice = self.notice(ctx, params)
        steps = [self._head(params.notifier, notice, notifier)]
        if isinstance(notifier, WebhookNotifier) and notifier.headers:
            steps.append("with headers " + ", ".join(sorted(notifier.headers)))
        steps += [
            f"title: {one_line(notice.title)}",
            f"text: {clip(notice.text, _STEP_EXCERPT)}",
            f"severity: {notice.severity}",
            "fields: " + ", ".join(f"{k}={v}" for k, v in notice.fields.items()),
        ]
        if notice.links:
            steps.append("links: " + ", ".join(f"{k}={v}" for k, v in notice.links.items()))
        return Plan(
            action=self.name,
            target=None,
            steps=tuple(steps),
            destructive=False,
            details={"notifier": params.notifier, "kind": notifier.kind,
                     "body": body_for(notifier, notice, reveal=False)},
        )

    async def execute(self, ctx: ActionContext, params: NP, plan: Plan) -> Result:
        notifier = self._notifier(ctx, params)
        sent = await deliver(notifier, self.notice(ctx, params))
        return Result(summary=f"notifier {params.notifier!r}: {sent}",
                      details={"notifier": params.notifier, "kind": notifier.kind, "sent": sent})


class NotifySlack(_NotifyAction[NoticeParams]):
    """Post a message to a Slack incoming webhook."""

    name = "notify.slack"
    description = "Post a message (title, text, alert fields) to a configured Slack notifier"
    params_model = NoticeParams
    kind = "slack"

    def _head(self, name: str, notice: Notice, notifier: NotifierConfig) -> str:
        return f"post a Slack message to notifier {name!r} (slack)"


class NotifyPagerDuty(_NotifyAction[PagerDutyParams]):
    """Trigger or resolve a PagerDuty incident through the Events API v2."""

    name = "notify.pagerduty"
    description = "Trigger or resolve a PagerDuty event on a configured PagerDuty notifier"
    params_model = PagerDutyParams
    kind = "pagerduty"

    def notice(self, ctx: ActionContext, params: PagerDutyParams) -> Notice:
        default = f"remediator-{ctx.rule}-{ctx.alert.fingerprint}"[:PAGERDUTY_DEDUP_KEY_MAX]
        base = super().notice(ctx, params)
        return Notice(title=base.title, text=base.text, severity=base.severity, fields=base.fields,
                      links=base.links, dedup_key=params.dedup_key or default,
                      resolve=params.event_action == "resolve")

    def _head(self, name: str, notice: Notice, notifier: NotifierConfig) -> str:
        action = "resolve" if notice.resolve else "trigger"
        return (f"send a PagerDuty {action} event to notifier {name!r} (pagerduty) "
                f"with dedup_key {notice.dedup_key}")


class NotifyWebhook(_NotifyAction[NoticeParams]):
    """POST the notice as generic JSON to a webhook notifier."""

    name = "notify.webhook"
    description = "POST the message as JSON (title, text, severity, fields, links) to a webhook notifier"
    params_model = NoticeParams
    kind = "webhook"

    def _head(self, name: str, notice: Notice, notifier: NotifierConfig) -> str:
        return f"POST JSON to notifier {name!r} (webhook)"
