"""The on-call settings: approving from Slack (``slack:``) and the web console (``console:``).

Part of the service config (``receiver.settings.Settings``); read by ``receiver.http.slack``,
``receiver.http.console`` and by the approval notice (``receiver.flow.notices``). Secrets
are references (``env:NAME``, ``file:/path``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from remediations.secrets import SecretRef
from rules.model import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlackApprovers(_Strict):
    """Who may press Approve / Reject in Slack: user IDs, or members of user groups."""

    users: list[Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,}$")]] = Field(default_factory=list)
    usergroups: list[Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,}$")]] = Field(default_factory=list)


class SlackSettings(_Strict):
    """Approve / Reject buttons in the approval notices, answered at ``POST /slack/interactions``."""

    signing_secret: SecretRef = Field(description="The Slack app's signing secret")
    bot_token: SecretRef | None = Field(default=None,
                                        description="A bot token; needed to read user groups")
    api_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://\S+$")
    approvers: SlackApprovers = Field(default_factory=SlackApprovers)

    @model_validator(mode="after")
    def _someone_approves(self) -> SlackSettings:
        if not self.approvers.users and not self.approvers.usergroups:
            raise ValueError("slack.approvers: name users or usergroups, or nobody may approve from Slack")
        if self.approvers.usergroups and self.bot_token is None:
            raise ValueError("slack.approvers.usergroups needs slack.bot_token (to read the groups)")
        return self


class ConsoleSettings(_Strict):
    """The web console at ``/ui/``."""

    enabled: bool = True
    session_secret: SecretRef | None = Field(
        default=None,
        description="Signs session cookies; give every replica the same (unset: one per process)")
    external_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Where people reach remediator (https://remediator.example.com); notices link to it",
    )
    session_ttl: Duration = Field(default=timedelta(hours=12), description="A sign-in lasts this long")
