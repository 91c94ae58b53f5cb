"""Every firing answered 202 is acted on once, or ended by a guard that means it, or escalated.

One test per row of ``tests.faults.cases.CASES``, run by ``tests.faults.runner.run``: real
``serve`` processes, a counting target, an Alertmanager-like sender, faults at seeded
random moments. A case fails on any accepted firing lost (no hit, no meaningful ending) or
duplicated (more than one hit), on a firing never accepted once everything was healed, and
on a notification refused with a 4xx, and, where the target fails, on more than one
``circuit_open`` escalation per outage; its message names the firings with their audit
trails. Each case's figures are printed at the end of the run (``tests.faults.conftest``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.cases import CASES, Case
from tests.faults.conftest import FIGURES
from tests.faults.runner import run

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_nothing_accepted_is_lost_or_run_twice(case: Case, tmp_path: Path,
                                               request: pytest.FixtureRequest) -> None:
    figures = run(case, tmp_path)
    request.config.stash.setdefault(FIGURES, []).append(figures.line())
    report = figures.report()
    print(report)
    lost, duplicated, unaccepted = len(figures.lost), len(figures.duplicated), len(figures.unaccepted)
    assert figures.accepted > 0, report
    assert (lost, duplicated) == (0, 0), report
    assert (unaccepted, figures.refused) == (0, 0), report
    if case.fault.opens_breaker:  # one escalation per opening streak, not one per re-open
        assert figures.escalations.get("circuit_open", 0) <= case.strikes, report
