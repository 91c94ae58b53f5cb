"""The maintenance guard: a live decision whose alert a configured window holds does not act.

The windows are configured under ``guards.maintenance`` (``receiver.settings.MaintenanceWindow``);
checked first for every live decision. Pure: the time comes in as an argument.
"""

from __future__ import annotations

from receiver.settings import MaintenanceWindow
from rules.alert import Alert


def active_window(windows: list[MaintenanceWindow], alert: Alert, now: float) -> MaintenanceWindow | None:
    """The first window that holds ``alert`` at ``now``."""
    return next((w for w in windows if w.applies(alert, now)), None)
