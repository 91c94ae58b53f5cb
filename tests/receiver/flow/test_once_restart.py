"""A real ``remediator serve`` killed in the middle of a step, then started again on the same state.

The execute-once marker says what is known of the step (``receiver.flow.guards.once``):
killed while waiting to retry an attempt that sent nothing, the step runs after the restart
(once, however often Alertmanager re-sends); killed while a request was out (the target hangs),
the step is not sent again and a human is asked, with the evidence. Each test runs its own
serve process (SQLite state in its directory) and a real HTTP target in this process.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.replicas import CountingTarget, Replica, events, until
from tests.support.serveproc import reap
from tests.support.webhooks import alert, body


def free_port() -> int:
    """A port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[Any]]:
    """What a test started: replicas and targets, stopped after it."""
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        thing.stop() if isinstance(thing, Replica) else thing.close()


def serve(tmp_path: Path, base_url: str, *, path: str, timeout: str = "10s",
          notify: str | None = None) -> Replica:
    """One serve process on ``tmp_path/state.db``: the rule POSTs ``base_url + path``, 3 retries 5 s apart."""
    rules = [{"name": "purge", "approval": "auto",
              "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
              "actions": [{"action": "http.request", "target": "api", "timeout": timeout,
                           "params": {"method": "POST", "path": path + "/{{ labels.namespace }}"}}]}]
    conf: dict[str, Any] = {
        "dry_run": False, "state": f"sqlite:///{tmp_path / 'state.db'}", "audit": "audit.jsonl",
        "rules": ["rules.yaml"], "targets": {"api": {"kind": "http", "base_url": base_url}},
        "guards": {"retries": 3, "retry_backoff": "5s", "blast_radius": None}, "log": {"format": "json"}}
    if notify is not None:
        (tmp_path / "hook_url").write_text(notify)
        conf["notifiers"] = {"oncall": {"kind": "webhook", "url": f"file:{tmp_path / 'hook_url'}"}}
        conf["escalation"] = {"notifiers": ["oncall"]}
    replica = Replica(tmp_path, "serve", conf)
    (replica.cwd / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}))
    return replica


def kill(replica: Replica) -> None:
    """SIGKILL, and its output pipe closed (the replica starts again as a new process)."""
    replica.kill()
    assert replica.proc is not None
    reap(replica.proc)


def markers(tmp_path: Path) -> list[str]:
    """The states of the execute-once markers in the state file, read beside the running serve."""
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as db:
        return [str(row[0]) for row in db.execute("SELECT state FROM step_mark")]


def ending(replica: Replica, decision: str) -> str:
    """The last record about ``decision``'s step (its ending)."""
    of_step = [str(r["event"]) for r in replica.audit() if r.get("decision") == decision and "step" in r]
    return of_step[-1]


def test_killed_while_waiting_to_retry_a_step_that_sent_nothing_runs_it_after_the_restart(
        tmp_path: Path, made: list[Any]) -> None:
    """Target port closed, SIGKILL during the 5 s backoff, target up, restart, re-send: one hit."""
    port = free_port()
    replica = serve(tmp_path, f"http://127.0.0.1:{port}/svc", path="/purge")
    made.append(replica)
    firing = body(alert(namespace="prod"))
    assert replica.start().request("POST", "/webhook", firing)[0] == 202
    until(lambda: bool(events(replica, name="action.failed")), "the first attempt to be refused")
    [failed] = events(replica, name="action.failed")  # made durable before the backoff's wait
    assert (failed["reason"], failed["attempt"]) == ("temporary_failure", 1)
    assert markers(tmp_path) == ["claimed"]  # nothing was sent: a retry may run
    kill(replica)  # in the backoff: the next attempt is 5 s away
    assert not events(replica, name="action.succeeded")
    assert len(events(replica, name="action.started")) == 1

    target = CountingTarget(port)
    made.append(target)
    replica.start()
    until(lambda: target.count("/svc/purge/prod") >= 1, "the step to run after the restart")
    status, answer = replica.request("POST", "/webhook", firing)  # Alertmanager's re-send
    assert (status, answer["queued"]) == (202, 0)
    until(lambda: bool(events(replica, name="action.succeeded")), "the audit of the step")
    decision = failed["decision"]
    until(lambda: ending(replica, decision) == "action.succeeded", "the step's audit to end")
    assert target.count("/svc/purge/prod") == 1
    assert markers(tmp_path) == ["done"]
    assert not events(replica, name="action.skipped")
    assert not events(replica, name="action.outcome_unknown")
    [resumed] = events(replica, name="decision.resumed")
    assert resumed["decision"] == decision


def test_killed_while_a_request_was_out_is_not_sent_again_and_a_human_is_asked(
        tmp_path: Path, made: list[Any]) -> None:
    """The target hangs; SIGKILL with the request out; after the restart the outcome is unknown:
    no second hit, ``action.outcome_unknown`` and an escalation carrying the evidence."""
    target = CountingTarget()
    made.append(target)
    replica = serve(tmp_path, target.url, path="/slow", timeout="60s", notify=target.url + "/notify")
    made.append(replica)
    firing = body(alert(namespace="prod"))
    assert replica.start().request("POST", "/webhook", firing)[0] == 202
    until(lambda: target.count("/svc/slow/prod") == 1, "the request to reach the hanging target")
    assert markers(tmp_path) == ["sending"]
    kill(replica)
    target.gate.set()  # the hung request ends; nobody hears its answer

    replica.start()
    until(lambda: bool(events(replica, name="escalation.sent")), "the escalation")
    status, answer = replica.request("POST", "/webhook", firing)
    assert (status, answer["queued"]) == (202, 0)
    [unknown] = events(replica, name="action.outcome_unknown")
    assert unknown["reason"] == "outcome_unknown"
    evidence = unknown["evidence"]
    assert evidence["marker"] == "sending"
    assert evidence["read_back"] is None
    assert evidence["holder"]
    assert evidence["sending_since"]
    [sent] = events(replica, name="escalation.sent")
    assert (sent["reason"], sent["decision"], sent["sent"]) == ("outcome_unknown", unknown["decision"],
                                                                ["oncall: webhook 200"])
    until(lambda: target.count("/svc/notify") == 1, "the notice to reach the on-call webhook")
    notice = json.loads(target.bodies[target.calls.index("/svc/notify")])
    assert "outcome unknown" in notice["title"]
    assert "cannot read its target back" in notice["text"]
    assert notice["fields"]["sending_since"] == str(evidence["sending_since"])
    [blocked] = [r for r in events(replica, name="guard.blocked") if r.get("guard") == "execute_once"]
    assert blocked["reason"] == "outcome_unknown"
    assert target.count("/svc/slow/prod") == 1  # never sent twice
    assert not events(replica, name="action.skipped")
