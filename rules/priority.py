"""Priority classification: P1–P4 from the alert's ``severity`` label.

Pure; called by ``receiver`` intake for every match. A rule's own ``priority`` wins;
otherwise the configured severity map decides, then the default. Each priority carries
the response target the runbooks set (P1 15 min, P2 1 h, P3 4 h, P4 24 h).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from rules.alert import Alert


class Priority(StrEnum):
    """P1 is the most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


DEFAULT_SEVERITY_MAP: Mapping[str, Priority] = {
    "critical": Priority.P1,
    "high": Priority.P2,
    "error": Priority.P2,
    "warning": Priority.P3,
    "info": Priority.P4,
}
DEFAULT_RESPONSE_TARGETS: Mapping[Priority, timedelta] = {
    Priority.P1: timedelta(minutes=15),
    Priority.P2: timedelta(hours=1),
    Priority.P3: timedelta(hours=4),
    Priority.P4: timedelta(hours=24),
}


class PriorityPolicy(BaseModel):
    """How severities map to priorities, and each priority's response target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    map: dict[str, Priority] = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_MAP))
    default: Priority = Priority.P3
    label: str = "severity"
    response_targets: dict[Priority, timedelta] = Field(
        default_factory=lambda: dict(DEFAULT_RESPONSE_TARGETS)
    )

    def response_target(self, priority: Priority) -> timedelta:
        """How soon a human must respond to an alert of this priority."""
        return self.response_targets.get(priority, DEFAULT_RESPONSE_TARGETS[priority])


def classify(alert: Alert, rule_priority: Priority | None, policy: PriorityPolicy) -> Priority:
    """The priority of ``alert`` as matched by a rule whose own priority is ``rule_priority``."""
    if rule_priority is not None:
        return rule_priority
    severity = alert.labels.get(policy.label, "").lower()
    return policy.map.get(severity, policy.default)
