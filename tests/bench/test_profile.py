"""Sorting py-spy's samples into the parts of the flow, and their shares."""

from __future__ import annotations

import pytest

from bench.profile import OTHER, part_of, shares

LOOP = ("_run_module_as_main (<frozen runpy>:198);main (receiver/cli/main.py:125);"
        "BaseEventLoop._run_once (asyncio/base_events.py:1922);Handle._run (asyncio/events.py:80)")
REQUEST = (LOOP + ";RequestHandler._handle_request (aiohttp/web_protocol.py:452);"
           "track (receiver/http/middlewares.py:40);webhook (receiver/http/handlers.py:67)")
INTAKE = REQUEST + ";Intake.accept (receiver/flow/intake.py:116)"
THREAD = ("Thread._bootstrap (threading.py:995);Thread.run (threading.py:975);"
          "_worker (concurrent/futures/thread.py:83)")


@pytest.mark.parametrize(("stack", "part"), [
    (INTAKE + ";RuleIndex.match (rules/engine.py:80);Rule.matches (rules/model.py:99)", "match rules"),
    (INTAKE + ";Intake._record_alert (receiver/flow/intake.py:230);"
     "AuditLog.record (receiver/audit/log.py:120);sorted_dumps (receiver/fastjson.py:30)",
     "audit: build and chain records"),
    (INTAKE + ";Decision.__init__ (<string>:2)", "intake: classify, build decisions, metrics"),
    (REQUEST + ";parse_webhook (receiver/flow/payload.py:50);_alert (receiver/flow/payload_fast.py:90)",
     "decode and validate the body"),
    (REQUEST, "remediator's HTTP layer (middlewares, handler)"),
    (LOOP + ";RequestHandler.start (aiohttp/web_protocol.py:500)",
     "aiohttp, asyncio, sockets (the floor's own work)"),
    (LOOP + ";GroupCommit._flush (receiver/flow/group.py:72);Enqueuer._claim (receiver/flow/enqueue.py:68);"
     "SqliteCore.tx (receiver/store/sqlite/core.py:61)", "dedup claim and enqueue (store)"),
    (LOOP + ";GroupCommit._flush (receiver/flow/group.py:72);"
     "Resolutions._close (receiver/flow/resolution.py:90)", "close resolved alerts (store)"),
    (LOOP + ";Feeder._feed (receiver/flow/feeder.py:110);"
     "SqliteQueue._take (receiver/store/sqlite/queue.py:165)", "take work (feeder, store)"),
    (LOOP + ";Completer._loop (receiver/flow/completer.py:76)", "complete work (store)"),
    (LOOP + ";Executor._work (receiver/flow/workers.py:90);Steps.plan (receiver/flow/steps.py:120)",
     "decide: plan, guards, record (workers)"),
    (LOOP + ";Executor._work (receiver/flow/workers.py:90);AuditLog.record (receiver/audit/log.py:120)",
     "audit: build and chain records"),
    (THREAD + ";_WorkItem.run (concurrent/futures/thread.py:58);AuditLog.commit (receiver/audit/log.py:276);"
     "AuditLog._write_durable (receiver/audit/log.py:300)",
     "audit: write and fsync (its own thread, mostly waiting on the disk)"),
    ("Steps.plan (receiver/flow/steps.py:120)", None),  # not read whole: no thread starts there
    ("Thread._bootstrap (threading.py:995);Checkpointer._run (receiver/store/sqlite/checkpoint.py:80);"
     "Checkpointer.checkpoint (receiver/store/sqlite/checkpoint.py:70)",
     "SQLite checkpoint (its own thread)"),
    (LOOP + ";Timers.arm (receiver/flow/timers.py:40)", OTHER),
    (THREAD, None),
    ("Thread._bootstrap (threading.py:995);Checkpointer._run (receiver/store/sqlite/checkpoint.py:80);"
     "Event.wait (threading.py:622);Condition.wait (threading.py:331)", None),
])
def test_each_sample_is_in_one_part(stack: str, part: str | None) -> None:
    assert part_of(stack.split(";")) == part


def test_shares_are_of_the_samples_not_idle() -> None:
    raw = [
        INTAKE + ";RuleIndex.match (rules/engine.py:80) 30\n",
        REQUEST + ";parse_webhook (receiver/flow/payload.py:50) 10\n",
        THREAD + " 500\n",  # idle pool threads: not counted
        "\n",
        "garbage without a count\n",
    ]
    assert shares(raw) == {"match rules": 0.75, "decode and validate the body": 0.25}
    assert shares([THREAD + " 5\n"]) == {}
