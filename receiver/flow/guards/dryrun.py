"""The dry-run guard for approved plans: approved while live, not run once dry-run is back on.

A live decision in dry-run never reaches an approval (it stops after its plan, in
``receiver.flow.decide``). An approved plan runs later, so :class:`DryRunNow`, a stage of
``receiver.flow.guards.pipeline``, asks again: when the service or the rule is in dry-run
now, the plan is not run.
"""

from __future__ import annotations

from receiver.decisions import Reason
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import ApprovedRun
from receiver.settings import Settings


class DryRunNow:
    """The stage: stop an approved plan while the service or its rule is in dry-run."""

    def __init__(self, settings: Settings) -> None:
        self._dry_run = settings.dry_run

    async def check_approved(self, run: ApprovedRun) -> None:
        if self._dry_run or run.loaded_rule.dry_run:
            which = "the service" if self._dry_run else "the rule"
            raise Blocked(Guard.DRY_RUN, Reason.DRY_RUN,
                          f"approval {run.approval.id} was approved, but {which} is in dry-run now, "
                          "so nothing was run")
