"""The alert as the rule engine sees it: one Alertmanager alert, already decoded.

Built by ``receiver.flow.payload`` from the webhook body (and by rule tests from YAML); read
by ``rules.engine``, ``rules.templating`` and ``rules.priority``. Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

AlertStatus = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of an Alertmanager webhook (version 4).

    ``starts_at_raw`` keeps the exact ``startsAt`` text: with the fingerprint it names one
    firing of one alert, byte for byte as Alertmanager re-sends it. ``ends_at`` is None
    for Alertmanager's zero time (``0001-01-01T00:00:00Z``).
    """

    fingerprint: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    starts_at_raw: str
    ends_at: datetime | None = None
    generator_url: str = ""

    @property
    def name(self) -> str:
        """The ``alertname`` label, or "" when the alert has none."""
        return self.labels.get("alertname", "")
