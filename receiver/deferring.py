"""The ``guards.defer:`` settings: how long accepted work waits behind a transient guard.

Part of the service config (``receiver.settings.GuardSettings``); read by
``receiver.flow.deferral``, which defers a decision an open circuit or a held target lock
stopped and gives it up (escalated) past these bounds.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from rules.model import Duration


class DeferSettings(BaseModel):
    """How long accepted work waits behind an open circuit or a held target lock
    (``receiver.flow.deferral``); past either bound it is escalated, never dropped silently."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_wait: Duration = Field(default=timedelta(hours=4),
                               description="Longest one decision waits, from its first deferral")
    max_attempts: int = Field(default=100, ge=1, le=10_000, description="Most deferrals of one decision")
    retry: Duration = Field(default=timedelta(seconds=1),
                            description="First wait for a held lock or a half-open trial; doubles each time")
    max_delay: Duration = Field(default=timedelta(seconds=30), description="Longest one of those waits")
