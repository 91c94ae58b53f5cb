"""Real ``remediator serve`` processes on one Redis: the work of a SIGKILLed one is taken up within
seconds (its heartbeat expires), not after ``queue.visibility_timeout``, and runs once.

Uses the replicas, the counting HTTP target and the Redis prefix of ``test_replicas.py``;
``visibility_timeout`` is left at 60 s so that only the heartbeat (500 ms) can explain a
prompt takeover.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.receiver.flow.test_replicas import prefix, replicas, target  # noqa: F401 - fixtures
from tests.support.redisdb import REDIS_URL
from tests.support.replicas import CountingTarget, Replica, config, events, until
from tests.support.webhooks import alert, body

QUEUE = {"workers": 1, "visibility_timeout": "60s", "heartbeat": "500ms"}
PROMPT = 10.0  # seconds: far below the 60 s visibility timeout, above 3 heartbeats and a start


@pytest.mark.parametrize("by", ["the-other-replica", "a-restarted-process"])
def test_work_of_a_killed_process_is_taken_up_within_seconds_and_runs_once(
        replicas: Callable[..., Replica], target: CountingTarget, prefix: str, by: str) -> None:  # noqa: F811
    """A holds one action in flight (a slow target) and one accepted, not started; SIGKILL. The
    other replica (already running), or A started again under a new consumer name, runs the
    unstarted one once within seconds and does not repeat the one that was sending (its outcome
    unknown: a human is asked)."""
    a = replicas("a", config(target, REDIS_URL, prefix=prefix, queue=QUEUE)).start()
    assert a.request("POST", "/webhook", body(alert(namespace="slow-1")))[0] == 202
    until(lambda: target.count("/svc/slow/slow-1") == 1, "replica a to start the slow action")
    assert a.request("POST", "/webhook", body(alert(namespace="prod-2")))[0] == 202
    time.sleep(0.3)  # a's feeder takes the second item into its buffer; its one worker is busy
    if by == "the-other-replica":
        rescuer = replicas("b", config(target, REDIS_URL, prefix=prefix, queue=QUEUE)).start()
        time.sleep(0.5)
        assert target.count("/svc/act/prod-2") == 0  # a holds it and is alive: b leaves it
        killed_at = time.monotonic()
        a.kill()
    else:
        killed_at = time.monotonic()
        a.kill()
        rescuer = replicas("a", config(target, REDIS_URL, prefix=prefix, queue=QUEUE)).start()
    until(lambda: target.count("/svc/act/prod-2") == 1, "the killed process's work", deadline=PROMPT)
    took = time.monotonic() - killed_at
    until(lambda: bool(events(rescuer, name="action.outcome_unknown")), "the started action not repeated")
    time.sleep(1.0)  # a second execution, if there were one, would land by now
    assert target.count("/svc/act/prod-2") == 1
    assert target.count("/svc/slow/slow-1") == 1
    assert [r["reason"] for r in events(rescuer, name="action.outcome_unknown")] == ["outcome_unknown"]
    assert [r["reason"] for r in events(rescuer, name="escalation.sent")] == ["outcome_unknown"]
    assert took < PROMPT
    print(f"taken up {took:.2f} s after SIGKILL ({by})")
