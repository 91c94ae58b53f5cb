"""Maintenance windows: when live actions wait (``guards.maintenance`` in the service config).

Part of ``receiver.settings.Settings`` (``GuardSettings.maintenance``); consulted by
``receiver.flow.guards.maintenance`` for every live decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.alert import Alert
from rules.model import MatcherField

__all__ = ["Day", "MaintenanceWindow", "Weekly"]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Weekly(BaseModel):
    """Every ``days`` from ``start`` to ``end`` (local time in ``timezone``); may cross midnight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: list[Day] = Field(min_length=1, description="Days the window starts on")
    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    def covers(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.timezone))
        day, clock = _DAYS[local.weekday()], local.time().replace(tzinfo=None)
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        # Crosses midnight: the evening part belongs to today, the morning part to yesterday.
        yesterday = _DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and clock >= self.start) or (yesterday in self.days and clock < self.end)


class MaintenanceWindow(BaseModel):
    """One window: either ``start``/``end`` instants or ``weekly``; ``matchers`` narrow it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    matchers: list[MatcherField] = Field(default_factory=list,
                                         description="All must hold; empty: every alert")
    start: datetime | None = None
    end: datetime | None = None
    weekly: Weekly | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        once = self.start is not None or self.end is not None
        if once == (self.weekly is not None):
            raise ValueError(f"maintenance window {self.name!r}: give either start and end, or weekly")
        if once:
            if self.start is None or self.end is None:
                raise ValueError(f"maintenance window {self.name!r}: start and end go together")
            if self.start.tzinfo is None or self.end.tzinfo is None:
                raise ValueError(f"maintenance window {self.name!r}: start and end need a timezone (Z)")
            if self.end <= self.start:
                raise ValueError(f"maintenance window {self.name!r}: end must be after start")
        return self

    def applies(self, alert: Alert, now: float) -> bool:
        if not all(m.matches(alert.labels.get(m.name, "")) for m in self.matchers):
            return False
        when = datetime.fromtimestamp(now, tz=UTC)
        if self.weekly is not None:
            return self.weekly.covers(when)
        assert self.start is not None
        assert self.end is not None
        return self.start <= when < self.end
