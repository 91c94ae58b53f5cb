"""Notifications. ``notify.log``: a structured log line, the smallest real action.

Run by ``receiver.executor`` like any action; useful as the first step of a runbook
("tell the on-call what would be done") and to run the whole flow with no backend.
"""

from __future__ import annotations

from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from remediations.base import Action, ActionContext, Plan, Result

_log = structlog.get_logger("remediator.notify")


class LogParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=4000, description="The message")
    level: Literal["info", "warning", "error"] = "info"


class NotifyLog(Action[LogParams]):
    """Write one structured log line (event ``notify.log``) with the alert's identity."""

    name = "notify.log"
    description = "Write a structured log line with the message and the alert's identity"
    params_model = LogParams
    timeout = 5.0

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
