"""The maintenance guard: a live decision whose alert a configured window holds does not act.

The windows are configured under ``guards.maintenance`` (``receiver.windows.MaintenanceWindow``).
:class:`Window` is the stage ``receiver.flow.guards.pipeline`` runs first for every live
decision, and again before an approved plan runs; :func:`active_window` is pure (the time
comes in as an argument; ``receiver.tools.simulate`` asks it too).
"""

from __future__ import annotations

from receiver.clock import Clock
from receiver.decisions import Reason
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import ApprovedRun, DecisionRun
from receiver.settings import Settings
from receiver.windows import MaintenanceWindow
from rules.alert import Alert


def active_window(windows: list[MaintenanceWindow], alert: Alert, now: float) -> MaintenanceWindow | None:
    """The first window that holds ``alert`` at ``now``."""
    return next((w for w in windows if w.applies(alert, now)), None)


class Window:
    """The stage: stop while a window holds the alert."""

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self._windows = settings.guards.maintenance
        self._clock = clock

    def _check(self, alert: Alert, then: str) -> None:
        window = active_window(self._windows, alert, self._clock.now())
        if window is not None:
            raise Blocked(Guard.MAINTENANCE, Reason.MAINTENANCE,
                          f"maintenance window {window.name!r} holds this alert{then}")

    async def check_decision(self, run: DecisionRun) -> None:
        self._check(run.d.alert, "")

    async def check_approved(self, run: ApprovedRun) -> None:
        self._check(run.request.alert, f"; approval {run.approval.id} was not run")
