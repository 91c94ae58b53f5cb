"""One alert's path through our modules (``tests.receiver.flow.flowtrace``): it reaches its
``action.succeeded`` record, and on the way meets the guards in the order the pipeline
declares them (``receiver.flow.guards.pipeline``)."""

from __future__ import annotations

from pathlib import Path

from tests.receiver.flow.flowtrace import trace_one_alert

GUARDS = "receiver.flow.guards."
ORDER = [
    # a live decision, before its plan: maintenance → the P1 timer (policies) → kill switch
    "maintenance", "policies", "killswitch",
    # planned: the P2 count (policies) → budgets and circuit peeked → approval
    "policies", "budget", "circuit", "approvals",
    # its action step: kill switch → circuit → execute-once marker → lock → budgets spent,
    # then before the attempt: the kill switch's and the fence's checks, and the marker
    # says `sending` (after action.started is durable); then it hears the outcome
    "killswitch", "circuit", "once", "lock", "budget", "killswitch", "lock", "once",
]


async def test_one_alert_meets_the_guards_in_the_declared_order(tmp_path: Path) -> None:
    trace = await trace_one_alert(tmp_path)
    assert trace.webhook[0].startswith("receiver.http.")
    assert "receiver.flow.intake" in trace.webhook
    assert trace.worker[0] == "receiver.flow.workers"
    assert trace.worker[-1] == "receiver.audit"  # action.succeeded
    met = [m.removeprefix(GUARDS).removeprefix("receiver.flow.") for m in trace.worker
           if (m.startswith(GUARDS) and m not in (GUARDS + "pipeline", GUARDS + "stages"))
           or m == "receiver.flow.policies"]
    assert [m for n, m in enumerate(met) if n == 0 or met[n - 1] != m] == ORDER
    figures = trace.from_webhook
    assert figures.returns == len(figures.path) - figures.crossed
    assert set(trace.worker) <= set(figures.path)
